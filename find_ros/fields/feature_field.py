"""The feature head: a hash grid of its own (separate from the radiance field's, as in LERF, so
the embedding never competes with density and colour for hash entries) and an MLP that predicts
the FIND embedding of a 3D point, optionally conditioned on a world-space scale.

Torch implementations only (nerfstudio's ``HashEncoding`` / ``MLP`` with ``implementation="torch"``):
no tinycudann, and the same code runs on CPU and CUDA.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nerfstudio.data.scene_box import SceneBox
from nerfstudio.field_components.encodings import HashEncoding
from nerfstudio.field_components.mlp import MLP
from nerfstudio.field_components.spatial_distortions import SpatialDistortion

MIN_SCALE = 1e-4  # scales are log-encoded; a zero depth must not give -inf


class FindFeatureField(nn.Module):
    def __init__(self, aabb: Tensor, out_dim: int, *, num_levels: int = 12, max_res: int = 512,
                 log2_hashmap_size: int = 17, features_per_level: int = 4, hidden_dim: int = 64,
                 num_layers: int = 2, scale_conditioned: bool = True,
                 spatial_distortion: SpatialDistortion | None = None) -> None:
        super().__init__()
        self.register_buffer("aabb", aabb.clone().float())
        self.spatial_distortion = spatial_distortion
        self.scale_conditioned = scale_conditioned
        self.encoding = HashEncoding(num_levels=num_levels, min_res=16, max_res=max_res,
                                     log2_hashmap_size=log2_hashmap_size, features_per_level=features_per_level,
                                     implementation="torch")
        self.mlp = MLP(in_dim=self.encoding.get_out_dim() + int(scale_conditioned), num_layers=num_layers,
                       layer_width=hidden_dim, out_dim=out_dim, activation=nn.ReLU(), implementation="torch")

    def encode(self, positions: Tensor) -> Tensor:
        """Hash features (N, F) of world points (N, 3) in the dataparser's normalised frame."""
        if self.spatial_distortion is not None:
            unit = (self.spatial_distortion(positions) + 2.0) / 4.0  # contracted space [-2, 2] -> [0, 1]
        else:
            unit = SceneBox.get_normalized_positions(positions, self.aabb)
        return self.encoding(unit.clamp(0.0, 1.0))

    def decode(self, features: Tensor, scale: Tensor | None) -> Tensor:
        """Embeddings (N, D) from hash features (N, F) and scales (N, 1) in world units."""
        if self.scale_conditioned:
            if scale is None:
                raise ValueError("this feature field is scale-conditioned: give a scale per point")
            features = torch.cat([features, scale.clamp_min(MIN_SCALE).log().to(features.dtype)], dim=-1)
        return self.mlp(features)

    def forward(self, positions: Tensor, scale: Tensor | None = None) -> Tensor:
        return self.decode(self.encode(positions), scale)

    def at_scales(self, positions: Tensor, scales: Tensor) -> Tensor:
        """Embeddings (N, S, D) of points (N, 3) at each of ``scales`` (S,), sharing the hash lookup."""
        features = self.encode(positions)
        if not self.scale_conditioned:
            return self.decode(features, None).unsqueeze(1).expand(-1, scales.shape[0], -1)
        return torch.stack([self.decode(features, s.expand(features.shape[0], 1)) for s in scales], dim=1)
