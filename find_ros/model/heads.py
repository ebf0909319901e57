"""Projections and task heads (paper 3.2.2 "Projection", "Task Head"), and the read-outs.

* Semantic projection: LayerNorm → linear D×D; embeddings are compared by scaled cosine similarity
  (a learned logit scale, CLIP-style): Score = Qs·Qsᵀ.
* Pixel projection: LayerNorm → 3-layer MLP to ``mask_dim``; Mask = Qp·M_Iᵀ with the stride-4 pixel
  embeddings M_I.
* Read-outs: ``match`` (argmax over proposals for each target, paper eq. 10–12; visual entities and
  clicked objects are matched in pixel space against their region's pixel embedding, as the
  authors do, text by semantic similarity), Mask2Former's panoptic merge / semantic / instance
  inference for generic segmentation, cosine similarity matrices for retrieval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from find_ros.model.embeddings import ImageEmbeddings
from find_ros.model.results import Instance, Segment, mask_box


class MLP(nn.Module):
    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, layers: int) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class Heads(nn.Module):
    def __init__(self, hidden_dim: int, mask_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden_dim)
        self.semantic = nn.Linear(hidden_dim, hidden_dim)
        self.pixel = MLP(hidden_dim, hidden_dim, mask_dim, 3)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        # Semantic embedding of "no object", the extra class of Mask2Former's classification.
        self.void_embedding = nn.Parameter(torch.randn(hidden_dim) * 0.02)

    def semantic_embed(self, queries: Tensor) -> Tensor:
        return self.semantic(self.norm(queries))

    def pixel_embed(self, queries: Tensor) -> Tensor:
        return self.pixel(self.norm(queries))

    @staticmethod
    def masks(pixel_embeddings: Tensor, pixel: Tensor) -> Tensor:
        """Mask logits (B, N, H/4, W/4) = Qp · M_Iᵀ."""
        return torch.einsum("bnc,bchw->bnhw", pixel_embeddings, pixel)

    def scale(self) -> Tensor:
        return self.logit_scale.exp().clamp(max=100.0)

    def similarity(self, a: Tensor, b: Tensor) -> Tensor:
        """Scaled cosine similarity logits (..., Na, Nb)."""
        return self.scale() * F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).transpose(-1, -2)


@dataclass
class Predictions:
    """Outputs of the heads for each query set of a task (dicts keyed by query name): semantic
    embeddings (B, N, D), pixel embeddings (B, N, mask_dim) and mask logits (B, N, H/4, W/4) on
    the padded input grid, for the query sets that declare those outputs."""

    semantic: dict[str, Tensor]
    pixel: dict[str, Tensor]
    masks: dict[str, Tensor]


# ---------------------------------------------------------------------------------------- read-outs


def upsample_masks(mask_logits: Tensor, image: ImageEmbeddings, index: int) -> Tensor:
    """Mask logits (N, H/4, W/4) of image ``index`` → (N, H, W) at its original size (float32)."""
    if mask_logits.shape[0] == 0:
        h, w = image.image_sizes[index]
        return mask_logits.new_zeros(0, h, w, dtype=torch.float32)
    rh, rw = image.resized_sizes[index]
    x = F.interpolate(mask_logits[None].float(), size=image.input_size, mode="bilinear", align_corners=False)
    x = x[..., :rh, :rw]
    return F.interpolate(x, size=image.image_sizes[index], mode="bilinear", align_corners=False)[0]


def match_logits(heads: Heads, proposal_semantic: Tensor, proposal_pixel: Tensor, target_semantic: Tensor,
                 target_pixel_refs: Tensor | None, has_pixel_ref: Tensor | None, semantic_blend: float = 0.0) -> Tensor:
    """(G, P) logits of each target against every proposal: scaled cosine of semantic embeddings, or
    of pixel embeddings for targets that are image regions (their pixel reference), mixed with
    ``semantic_blend`` of their semantic logits (0: pixel only, as trained)."""
    logits = heads.similarity(target_semantic, proposal_semantic)
    if target_pixel_refs is not None and has_pixel_ref is not None and bool(has_pixel_ref.any()):
        pixel_logits = heads.similarity(target_pixel_refs, proposal_pixel)
        if semantic_blend:
            pixel_logits = (1.0 - semantic_blend) * pixel_logits + semantic_blend * logits
        logits = torch.where(has_pixel_ref[:, None], pixel_logits, logits)
    return logits


def panoptic_merge(mask_logits: Tensor, class_logits: Tensor, labels: Sequence[str], thing: Sequence[bool],
                   object_threshold: float, overlap_threshold: float) -> tuple[np.ndarray, list[Segment]]:
    """Mask2Former's panoptic inference for one image. ``mask_logits`` (Q, H, W) at image size,
    ``class_logits`` (Q, C+1) with the last column "no object"."""
    probs = class_logits.float().softmax(-1)
    scores, classes = probs.max(-1)
    num_classes = class_logits.shape[-1] - 1
    keep = (classes != num_classes) & (scores > object_threshold)
    height, width = mask_logits.shape[-2:]
    panoptic = np.zeros((height, width), dtype=np.int32)
    segments: list[Segment] = []
    if not bool(keep.any()):
        return panoptic, segments
    masks = mask_logits[keep].float().sigmoid()
    scores, classes = scores[keep], classes[keep]
    owner = (scores[:, None, None] * masks).argmax(0)
    stuff_ids: dict[int, int] = {}
    for k in range(masks.shape[0]):
        cls = int(classes[k])
        on = masks[k] >= 0.5
        original = int(on.sum())
        region = (owner == k) & on
        area = int(region.sum())
        if original == 0 or area == 0 or area / original < overlap_threshold:
            continue
        region_np = region.cpu().numpy()
        if not thing[cls] and cls in stuff_ids:  # one segment per stuff class
            seg = next(s for s in segments if s.id == stuff_ids[cls])
            panoptic[region_np] = seg.id
            seg.area = int((panoptic == seg.id).sum())
            seg.box = mask_box(panoptic == seg.id)
            continue
        seg_id = len(segments) + 1
        panoptic[region_np] = seg_id
        segments.append(Segment(seg_id, labels[cls], cls, float(scores[k]), area, mask_box(region_np), bool(thing[cls])))
        if not thing[cls]:
            stuff_ids[cls] = seg_id
    return panoptic, segments


def semantic_map(mask_logits: Tensor, class_logits: Tensor) -> np.ndarray:
    """(H, W) class index: argmax of Σ_q p(class | q)·sigmoid(mask_q) (Mask2Former semantic inference)."""
    probs = class_logits.float().softmax(-1)[:, :-1]
    scores = torch.einsum("qc,qhw->chw", probs, mask_logits.float().sigmoid())
    return scores.argmax(0).to(torch.int32).cpu().numpy()


def instances(mask_logits: Tensor, class_logits: Tensor, labels: Sequence[str], top_k: int) -> list[Instance]:
    """Top-k (query, class) pairs scored by class probability × mean mask probability inside the mask."""
    probs = class_logits.float().softmax(-1)[:, :-1]
    num_classes = probs.shape[1]
    flat = probs.flatten()
    k = min(top_k, flat.numel())
    top, order = flat.topk(k)
    out: list[Instance] = []
    for score, idx in zip(top.tolist(), order.tolist()):
        q, cls = divmod(idx, num_classes)
        prob = mask_logits[q].float().sigmoid()
        on = prob >= 0.5
        mask_score = float((prob * on).sum() / on.sum().clamp_min(1))
        out.append(Instance(labels[cls], cls, score * mask_score, on.cpu().numpy()))
    out.sort(key=lambda i: -i.score)
    return out


def cosine_matrix(a: Tensor, b: Tensor) -> Tensor:
    return F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).T
