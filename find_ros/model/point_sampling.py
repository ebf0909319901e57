"""Weights of the released FIND models' point sampling and spatial memory (no counterpart in our
own models, which pool prompts by masked means in :mod:`find_ros.model.sampler`).

Facts from ``find-official/README.md`` §2 and §5: point samples of visual entities and
interactive prompts are features of level l projected by ``mask_sptial_embed[l]`` ([hidden,
hidden], used as ``feature @ W``); ``spatial_embed`` / ``spatial_featured`` are the
``SPATIAL_MEMORIES`` memory slots of multi-round interactive segmentation. This module only holds
them, so a converted checkpoint keeps every tensor; the sampling itself follows with the authors'
decoder.
"""

from __future__ import annotations

import torch
from torch import nn


class PointSamplingWeights(nn.Module):
    def __init__(self, hidden_dim: int, num_levels: int, memories: int) -> None:
        super().__init__()
        self.level_projections = nn.ParameterList(
            nn.Parameter(torch.eye(hidden_dim)) for _ in range(num_levels)
        )
        self.memory_embed = nn.Embedding(memories, hidden_dim)
        self.memory_featured = nn.Embedding(memories, hidden_dim)
