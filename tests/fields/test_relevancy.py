"""Relevancy against the canonical negatives."""

from __future__ import annotations

import torch

from find_ros.fields.relevancy import over_scales, relevancy


def test_relevancy_against_negatives() -> None:
    query = torch.tensor([1.0, 0.0, 0.0])
    negatives = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    features = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [1.0, 1.0, 0.0]])
    rel = relevancy(features, query, negatives, temperature=10.0)
    assert rel[0] > 0.99 and rel[1] < 0.01
    torch.testing.assert_close(rel[2], torch.tensor(0.5))  # ties with a negative: not relevant
    expected = torch.sigmoid(torch.tensor(10.0 * (1.0 - 0.0)))
    torch.testing.assert_close(rel[0], expected)
    per_scale = torch.stack([features[[1, 0]], features[[0, 0]]], dim=0)  # (N=2, S=2, D)
    best, index = over_scales(per_scale, query, negatives, 10.0)
    assert index.tolist() == [1, 0] and bool((best > 0.99).all())
