"""LERF-style relevancy of field embeddings to a query, against canonical negatives.

For an embedding φ, a query q and negatives n_k (all compared by cosine), relevancy is
``min_k softmax(τ·[φ·q, φ·n_k])[0] = min_k sigmoid(τ·(φ·q − φ·n_k))``: above 0.5 only where the
query describes the point better than every generic phrase ("object", "things", "stuff",
"texture"), which removes what a query merely shares with everything. Over several scales a point
takes its most relevant one. One implementation serves the viewer, the 3D query and the benchmarks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

CANONICAL_NEGATIVES = ("object", "things", "stuff", "texture")
THRESHOLD = 0.5  # relevancy above which the query beats every negative


def relevancy(features: Tensor, query: Tensor, negatives: Tensor, temperature: float) -> Tensor:
    """``features`` (..., D), ``query`` (D,) or (1, D), ``negatives`` (K, D) -> relevancy (...)."""
    f = F.normalize(features.float(), dim=-1)
    q = F.normalize(query.float().reshape(-1), dim=0)
    n = F.normalize(negatives.float(), dim=-1)
    positive = f @ q
    if n.shape[0] == 0:
        return torch.sigmoid(temperature * positive)
    return torch.sigmoid(temperature * (positive.unsqueeze(-1) - f @ n.T)).amin(-1)


def over_scales(features: Tensor, query: Tensor, negatives: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """Relevancy of (N, S, D) per-scale embeddings: the best scale per point -> (N,), index (N,)."""
    per_scale = relevancy(features, query, negatives, temperature)
    return per_scale.max(dim=-1)


def colorize(values: Tensor) -> Tensor:
    """Turbo colours (..., 3) in [0, 1] for relevancy values in [0, 1]."""
    from nerfstudio.utils import colormaps

    return colormaps.apply_colormap(values.float().clamp(0, 1).unsqueeze(-1), colormaps.ColormapOptions("turbo"))


def composite(rgb: Tensor, values: Tensor) -> Tensor:
    """The rendering with relevant parts (relevancy > 0.5) painted by relevancy, the rest as is."""
    alpha = ((values.float() - THRESHOLD) / (1 - THRESHOLD)).clamp(0, 1).unsqueeze(-1)
    alpha = torch.where(alpha > 0, 0.35 + 0.5 * alpha, alpha)
    return rgb * (1 - alpha) + colorize(values) * alpha
