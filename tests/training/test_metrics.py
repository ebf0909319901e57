"""Metrics on hand-made cases whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.metrics import GroundingMeter, PanopticMeter, recall_at_k, retrieval_metrics


def test_grounding_meter_ciou_and_miou_differ() -> None:
    meter = GroundingMeter()
    big = np.zeros((10, 10), bool)
    big[:, :8] = True
    meter.update(big, big)  # IoU 1 on 80 pixels
    small_t = np.zeros((10, 10), bool)
    small_t[0, 0] = True
    meter.update(np.zeros((10, 10), bool), small_t)  # IoU 0 on 1 pixel
    out = meter.compute()
    assert out["cIoU"] == pytest.approx(80 / 81)
    assert out["mIoU"] == pytest.approx(0.5)
    assert out["precision@0.5"] == pytest.approx(0.5)


def test_recall_at_k() -> None:
    sim = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8]])
    assert recall_at_k(sim, [[0], [1]], (1, 2)) == {1: 0.5, 2: 1.0}
    m = retrieval_metrics(sim, [0, 1], (1, 2))
    assert m["IR@1"] == 0.5 and m["TR@2"] == 1.0 and m["gallery"] == 3


def test_panoptic_meter_perfect_and_missing() -> None:
    truth = np.zeros((8, 8), np.int64)
    truth[:4] = 11  # stuff 3
    truth[4:, :4] = 12  # thing 1
    truth[4:, 4:] = 13  # thing 1
    cats = {11: 3, 12: 1, 13: 1}
    perfect = PanopticMeter([1, 2], [3])
    perfect.update(truth.copy(), dict(cats), {12: 0.9, 13: 0.8}, truth, cats)
    out = perfect.compute()
    assert out["PQ"] == pytest.approx(1.0) and out["mAP"] == pytest.approx(1.0) and out["mIoU"] == pytest.approx(1.0)
    # Predicting the stuff only: the two things are missed (PQ_th 0), the stuff is perfect.
    partial = PanopticMeter([1, 2], [3])
    pred = np.where(truth == 11, 11, 0)
    partial.update(pred, {11: 3}, {}, truth, cats)
    out = partial.compute()
    assert out["PQ_st"] == pytest.approx(1.0) and out["PQ_th"] == pytest.approx(0.0) and out["PQ"] == pytest.approx(0.5)
