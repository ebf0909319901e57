"""The standard losses FIND trains with (paper A.2; weights in ANCHORS.md): mask binary cross-entropy
and Dice, Hungarian matching of proposals to targets (scipy), matching cross-entropy for grounding
and symmetric contrastive loss for retrieval. The training code combines them; they live here so
that every trainer computes them the same way."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def sigmoid_bce(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean binary cross-entropy per mask pair, (N, H, W) logits vs {0, 1} targets → (N,)."""
    return F.binary_cross_entropy_with_logits(logits.float(), targets.float(), reduction="none").flatten(1).mean(1)


def dice_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """1 − Dice of sigmoid(logits) and targets, per mask pair → (N,)."""
    p = logits.float().sigmoid().flatten(1)
    t = targets.float().flatten(1)
    return 1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)


def pairwise_mask_cost(logits: Tensor, targets: Tensor) -> Tensor:
    """(P, G) BCE + Dice cost of every proposal mask against every target mask (same resolution)."""
    p = logits.float().flatten(1)
    t = targets.float().flatten(1)
    pos = F.binary_cross_entropy_with_logits(p, torch.ones_like(p), reduction="none")
    neg = F.binary_cross_entropy_with_logits(p, torch.zeros_like(p), reduction="none")
    bce = (pos @ t.T + neg @ (1 - t).T) / p.shape[1]
    s = p.sigmoid()
    dice = 1 - (2 * s @ t.T + 1) / (s.sum(1)[:, None] + t.sum(1)[None, :] + 1)
    return bce + dice


def hungarian_match(cost: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Optimal one-to-one assignment (rows, cols) minimising ``cost`` (scipy's linear_sum_assignment)."""
    from scipy.optimize import linear_sum_assignment

    return linear_sum_assignment(cost.detach().float().cpu().numpy())


def grounding_ce(logits: Tensor, target_proposals: Tensor) -> Tensor:
    """Cross-entropy of each target's logits over proposals (G, P) against its matched proposal."""
    return F.cross_entropy(logits.float(), target_proposals)


def contrastive(a: Tensor, b: Tensor, scale: Tensor | float) -> Tensor:
    """Symmetric InfoNCE between paired rows of ``a`` and ``b`` (N, D) with a logit scale."""
    logits = scale * F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).T
    labels = torch.arange(a.shape[0], device=a.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
