"""FIND's training losses (paper appendix A.2; the weights, the authors' released ones, are set in the
YAML config).

* Mask losses are computed on sampled points, not on full-resolution masks (Mask2Former, which FIND
  inherits): K points per mask, 75% of them where the prediction is most uncertain and the rest
  uniform. The Hungarian matching cost uses the same kind of point sample (uniform), so matching
  and loss agree on what a good mask is, at a fraction of the cost of full masks.
* Generic segmentation: proposals × (classes + no-object) logits; Hungarian matching
  (``scipy.optimize.linear_sum_assignment``) on class + BCE + Dice costs; CE with the no-object
  class weighted by ``no_object_weight`` (0.1), BCE and Dice on matched pairs.
* Grounding (grounded, interactive, interleave): each target query scores every proposal; the
  target's proposal is chosen by Hungarian matching on (−softmax score, BCE, Dice); CE over
  proposals teaches the read-out's argmax to pick that proposal, BCE + Dice teach its mask.
* Retrieval (image–text, interleave): symmetric InfoNCE over the batch with the model's logit scale.
  Under DDP the embeddings of every rank are gathered (with gradients), so the negatives are the
  global batch, as in the authors' multi-GPU training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor


@dataclass(frozen=True)
class MaskLossConfig:
    num_points: int = 12544  # Mask2Former's 112×112; the synthetic config uses fewer
    oversample_ratio: float = 3.0
    importance_ratio: float = 0.75


# ------------------------------------------------------------------------------------------ points


def point_sample(maps: Tensor, coords: Tensor) -> Tensor:
    """Bilinear values of ``maps`` (N, H, W) at ``coords`` (N, P, 2) in [0, 1] (x, y) → (N, P)."""
    grid = coords.unsqueeze(1) * 2.0 - 1.0  # (N, 1, P, 2) in grid_sample's [-1, 1]
    return F.grid_sample(maps.unsqueeze(1), grid.to(maps.dtype), mode="bilinear", align_corners=False)[:, 0, 0]


def uncertain_points(logits: Tensor, cfg: MaskLossConfig, generator: torch.Generator | None = None) -> Tensor:
    """(N, P, 2) coordinates: mostly where |logit| is smallest among an oversampled set (Mask2Former)."""
    n = logits.shape[0]
    p = cfg.num_points
    sampled = max(p, int(p * cfg.oversample_ratio))
    coords = torch.rand(n, sampled, 2, device=logits.device, generator=generator)
    uncertainty = -point_sample(logits.detach(), coords).abs()
    k = int(cfg.importance_ratio * p)
    idx = uncertainty.topk(k, dim=1).indices
    chosen = torch.gather(coords, 1, idx.unsqueeze(-1).expand(-1, -1, 2))
    rest = torch.rand(n, p - k, 2, device=logits.device, generator=generator)
    return torch.cat([chosen, rest], dim=1)


# ---------------------------------------------------------------------------------------- elements


def dice_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Per-row dice loss of sigmoid(logits) (N, P) against {0,1} targets (N, P) → (N,)."""
    p = logits.sigmoid()
    num = 2 * (p * targets).sum(-1)
    den = p.sum(-1) + targets.sum(-1)
    return 1 - (num + 1) / (den + 1)


def bce_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Per-row mean binary cross-entropy (N, P) → (N,)."""
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(-1)


def pair_costs(logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """All-pairs BCE and Dice costs between predictions (Q, P) and targets (N, P) → (Q, N) each."""
    p = logits.shape[-1]
    pos = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")
    neg = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
    bce = (pos @ targets.T + neg @ (1 - targets).T) / p
    s = logits.sigmoid()
    dice = 1 - (2 * s @ targets.T + 1) / (s.sum(-1)[:, None] + targets.sum(-1)[None, :] + 1)
    return bce, dice


def _targets_at(masks: Tensor, coords: Tensor) -> Tensor:
    return point_sample(masks.float(), coords)


def matched_mask_losses(pred: Tensor, target: Tensor, cfg: MaskLossConfig,
                        generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """BCE and Dice summed over matched pairs: ``pred`` (N, h, w) logits, ``target`` (N, H, W) {0,1}.
    Point coordinates are normalised, so the prediction and truth resolutions may differ."""
    if pred.shape[0] == 0:
        zero = pred.sum() * 0
        return zero, zero
    coords = uncertain_points(pred, cfg, generator)
    logits = point_sample(pred, coords)
    labels = _targets_at(target, coords)
    return bce_loss(logits, labels).sum(), dice_loss(logits, labels).sum()


# ---------------------------------------------------------------------------------------- matching


@torch.no_grad()
def hungarian(cost: Tensor) -> tuple[Tensor, Tensor]:
    """Row and column indices of the minimum-cost assignment of a (Q, N) cost matrix, Q >= N."""
    if not torch.isfinite(cost).all():
        raise FloatingPointError("non-finite matching cost (the model produced NaN or inf)")
    rows, cols = linear_sum_assignment(cost.detach().float().cpu().numpy())
    order = cols.argsort()  # targets in order: cols[order] == 0..N-1
    device = cost.device
    return torch.as_tensor(rows[order], device=device), torch.as_tensor(cols[order], device=device)


@torch.no_grad()
def _mask_costs(pred: Tensor, target: Tensor, num_points: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    coords = torch.rand(1, num_points, 2, device=pred.device, generator=generator)
    p = point_sample(pred, coords.expand(pred.shape[0], -1, -1))
    t = _targets_at(target, coords.expand(target.shape[0], -1, -1))
    return pair_costs(p.float(), t.float())


# ------------------------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class SetLossWeights:
    ce: float
    bce: float
    dice: float
    no_object: float = 0.1


def generic_segmentation_loss(class_logits: Tensor, mask_logits: Tensor, labels: Tensor, masks: Tensor,
                              weights: SetLossWeights, cfg: MaskLossConfig,
                              generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """One image. ``class_logits`` (Q, C+1), the last column no-object; ``mask_logits`` (Q, h, w);
    ``labels`` (N,) in 0..C-1; ``masks`` (N, H, W). Returns summed (not yet normalised) losses and
    the number of targets under ``"count"``."""
    q, c1 = class_logits.shape
    target_classes = torch.full((q,), c1 - 1, dtype=torch.long, device=class_logits.device)
    class_weight = torch.ones(c1, device=class_logits.device)
    class_weight[-1] = weights.no_object
    if masks.shape[0]:
        prob = class_logits.detach().float().softmax(-1)
        bce, dice = _mask_costs(mask_logits.detach(), masks, cfg.num_points, generator)
        cost = weights.ce * -prob[:, labels] + weights.bce * bce + weights.dice * dice
        rows, cols = hungarian(cost)
        target_classes[rows] = labels[cols]
        mb, md = matched_mask_losses(mask_logits[rows], masks[cols], cfg, generator)
    else:
        mb = md = mask_logits.sum() * 0
    # Mask2Former's CE: weighted mean over all Q proposals (no-object ones down-weighted).
    ce = F.cross_entropy(class_logits.float(), target_classes, weight=class_weight)
    return {"ce": ce, "bce": mb, "dice": md, "count": torch.tensor(float(masks.shape[0]))}


def grounding_loss(match_logits: Tensor, mask_logits: Tensor, masks: Tensor, weights: SetLossWeights,
                   cfg: MaskLossConfig, generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """One image. ``match_logits`` (Q, N): how well proposal q answers target n (the read-out takes
    the argmax over q); ``mask_logits`` (Q, h, w); ``masks`` (N, H, W). Hungarian matching picks one
    distinct proposal per target; CE over proposals trains the argmax to find it."""
    n = masks.shape[0]
    if n == 0:
        zero = mask_logits.sum() * 0 + match_logits.sum() * 0
        return {"ce": zero, "bce": zero, "dice": zero, "count": torch.tensor(0.0)}
    if match_logits.shape[0] < n:
        raise ValueError(f"{n} targets but only {match_logits.shape[0]} proposals")
    prob = match_logits.detach().float().softmax(0)
    bce, dice = _mask_costs(mask_logits.detach(), masks, cfg.num_points, generator)
    cost = weights.ce * -prob + weights.bce * bce + weights.dice * dice
    rows, cols = hungarian(cost)
    ce = F.cross_entropy(match_logits.float().T[cols], rows, reduction="sum")
    mb, md = matched_mask_losses(mask_logits[rows], masks[cols], cfg, generator)
    return {"ce": ce, "bce": mb, "dice": md, "count": torch.tensor(float(n))}


def gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` (N_r, D) over DDP ranks, rank order, keeping the gradient of every part
    (identity outside DDP). Ranks may hold different N_r: rows are padded for the collective."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather

    sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([x.shape[0]], dtype=torch.long, device=x.device))
    counts = [int(s) for s in sizes]
    padded = F.pad(x, (0, 0, 0, max(counts) - x.shape[0]))
    parts = all_gather(padded.contiguous())
    return torch.cat([p[:n] for p, n in zip(parts, counts)], dim=0)


def contrastive_loss(images: Tensor, texts: Tensor, logit_scale: Tensor, text_image: Tensor | None = None) -> Tensor:
    """Symmetric InfoNCE between image embeddings (B, D) and text embeddings (T, D), both already
    gathered over ranks. ``text_image[t]`` is the image of text t (default: t). Cosine similarity."""
    a = F.normalize(images.float(), dim=-1)
    b = F.normalize(texts.float(), dim=-1)
    logits = logit_scale.float() * b @ a.T  # (T, B)
    if text_image is None:
        text_image = torch.arange(b.shape[0], device=b.device)
    t2i = F.cross_entropy(logits, text_image)
    # Image → text: an image may have several texts in the batch; its target is their uniform mix.
    target = torch.zeros_like(logits.T)
    target[text_image, torch.arange(b.shape[0], device=b.device)] = 1.0
    has = target.sum(1) > 0
    target = target[has] / target[has].sum(1, keepdim=True)
    i2t = -(target * logits.T[has].log_softmax(-1)).sum(-1).mean()
    return (t2i + i2t) / 2
