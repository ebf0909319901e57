"""The trainable neck (pixel decoder): backbone maps → interface levels and pixel embeddings M_I.

The authors reuse X-Decoder's frozen pixel decoder (an FPN plus a 6-layer transformer encoder on the
coarsest level). That decoder is not available here, so this package trains a small one instead:

* for every output stride s in (4, 8, 16, 32) take the backbone map whose stride is nearest to s and
  resample it onto the s-grid of the 32-aligned input. For a hierarchical backbone (FocalNet) this
  is the identity; for a plain ViT it is ViTDet's *simple feature pyramid* built from its last map
  (with interpolation where ViTDet uses (de)convolutions);
* 1×1 lateral convolutions to ``hidden_dim``, a top-down FPN pass, a 3×3 output convolution;
* levels at strides 32, 16, 8 (coarse → fine, the order the interface cycles through) and the
  stride-4 map projected to ``mask_dim``: the pixel embeddings M_I that masks are read from.

It is the only trainable part that sees pixels; the foundation model under it stays frozen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

OUTPUT_STRIDES = (4, 8, 16, 32)


def _norm(channels: int) -> nn.GroupNorm:
    groups = math.gcd(32, channels)
    if channels // groups < 2 and groups > 1:
        groups //= 2  # at least two channels per group: a 1x1 map (a small crop) still normalises
    return nn.GroupNorm(groups, channels)


def resample(x: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrinking = x.shape[-2] > size[0] or x.shape[-1] > size[1]
    # Antialiasing when shrinking averages a ViT's fine grid instead of skipping cells.
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrinking)


class PixelDecoder(nn.Module):
    def __init__(self, in_channels: Sequence[int], in_strides: Sequence[int], hidden_dim: int,
                 mask_dim: int, num_levels: int = 3) -> None:
        super().__init__()
        if len(in_channels) != len(in_strides) or not in_channels:
            raise ValueError("the vision encoder must report one channel count per stride")
        self.num_levels = num_levels
        # The source map of each output stride: the one nearest on a log scale.
        self.sources = [
            min(range(len(in_strides)), key=lambda i, s=s: abs(math.log2(in_strides[i] / s))) for s in OUTPUT_STRIDES
        ]
        self.lateral = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels[src], hidden_dim, 1, bias=False), _norm(hidden_dim)) for src in self.sources
        )
        self.output = nn.ModuleList(
            nn.Sequential(nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1, bias=False), _norm(hidden_dim), nn.ReLU())
            for _ in OUTPUT_STRIDES
        )
        self.mask_features = nn.Conv2d(hidden_dim, mask_dim, 1)

    def forward(self, maps: Sequence[Tensor], input_size: tuple[int, int]) -> tuple[list[Tensor], Tensor]:
        """``maps`` from the encoder, ``input_size`` the padded (H, W). Returns (levels at strides
        32, 16, 8 — the first ``num_levels`` of them —, pixel embeddings at stride 4)."""
        height, width = input_size
        laterals = []
        for stride, src, lateral in zip(OUTPUT_STRIDES, self.sources, self.lateral):
            laterals.append(lateral(resample(maps[src], (height // stride, width // stride))))
        # Top-down: each finer level adds the upsampled coarser one.
        outs: list[Tensor] = [laterals[-1]]
        for lat in reversed(laterals[:-1]):
            outs.append(lat + F.interpolate(outs[-1], size=lat.shape[-2:], mode="nearest"))
        outs = [conv(x) for conv, x in zip(self.output, reversed(outs))]  # back to fine→coarse
        pixel = self.mask_features(outs[0])
        levels = [outs[3], outs[2], outs[1]][: self.num_levels]
        return levels, pixel
