"""The feature head and its scales."""

from __future__ import annotations

import pytest
import torch


def test_feature_head_scales() -> None:
    from find_ros.fields.feature_field import FindFeatureField

    aabb = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    head = FindFeatureField(aabb, 8, num_levels=4, max_res=32, log2_hashmap_size=10, hidden_dim=16)
    points = torch.rand(5, 3) * 2 - 1
    scales = torch.tensor([0.05, 0.5])
    both = head.at_scales(points, scales)
    assert both.shape == (5, 2, 8)
    torch.testing.assert_close(both[:, 1], head(points, torch.full((5, 1), 0.5)))
    assert not torch.allclose(both[:, 0], both[:, 1])
    head(points, torch.full((5, 1), 0.1)).sum().backward()
    assert head.encoding.hash_table.grad is not None and head.encoding.hash_table.grad.abs().sum() > 0
    flat = FindFeatureField(aabb, 8, num_levels=4, max_res=32, log2_hashmap_size=10, scale_conditioned=False)
    torch.testing.assert_close(flat.at_scales(points, scales)[:, 0], flat.at_scales(points, scales)[:, 1])
    with pytest.raises(ValueError, match="scale"):
        head(points)
