"""Projections and task heads (paper 3.2.2 "Projection", "Task Head").

* Semantic projection: LayerNorm → linear D×D; embeddings are compared by scaled cosine similarity
  (a learned logit scale, CLIP-style): Score = Qs·Qsᵀ.
* Pixel projection: LayerNorm → 3-layer MLP to ``mask_dim``; Mask = Qp·M_Iᵀ with the stride-4 pixel
  embeddings M_I.

What each task makes of these outputs (matching, panoptic merge, similarities) is in
:mod:`find_ros.model.readout`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


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

    def scale(self, clamp: bool = True) -> Tensor:
        scale = self.logit_scale.exp()
        return scale.clamp(max=100.0) if clamp else scale

    def similarity(self, a: Tensor, b: Tensor, clamp: bool = True) -> Tensor:
        """Scaled cosine similarity logits (..., Na, Nb); ``clamp``: the scale at most 100."""
        return self.scale(clamp) * F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).transpose(-1, -2)

    def pooled_semantic_embed(self, query: Tensor, proposals: Tensor) -> Tensor:
        """The authors' image embedding (B, 1, D): the semantic head on the mean of the proposals'
        normed states (B, P, D) weighted by softmax over cos(query, proposal), each side divided by
        its norm + 1e-7 (find-official README §5). ``query`` (B, 1, D) itself is not changed."""
        q, p = self.norm(query), self.norm(proposals)
        weights = ((q / (q.norm(dim=-1, keepdim=True) + 1e-7)) @ (p / (p.norm(dim=-1, keepdim=True) + 1e-7)).transpose(1, 2))
        return self.semantic(weights.softmax(-1) @ p)


@dataclass
class Predictions:
    """Outputs of the heads for each query set of a task (dicts keyed by query name): semantic
    embeddings (B, N, D), pixel embeddings (B, N, mask_dim) and mask logits (B, N, H/4, W/4) on
    the padded input grid, for the query sets that declare those outputs."""

    semantic: dict[str, Tensor]
    pixel: dict[str, Tensor]
    masks: dict[str, Tensor]
