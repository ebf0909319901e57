"""Losses and metrics on hand-made cases whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.losses import (
    MaskLossConfig,
    SetLossWeights,
    contrastive_loss,
    generic_segmentation_loss,
    grounding_loss,
    hungarian,
    point_sample,
)
from training.metrics import GroundingMeter, PanopticMeter, recall_at_k, retrieval_metrics

CFG = MaskLossConfig(num_points=256)


def _blocks(n: int, size: int = 16) -> torch.Tensor:
    masks = torch.zeros(n, size, size)
    for i in range(n):
        masks[i, :, i * size // n : (i + 1) * size // n] = 1
    return masks


def test_point_sample_reads_the_map() -> None:
    maps = torch.arange(16.0).view(1, 4, 4)
    # Cell centres in normalised coordinates read back exactly.
    coords = torch.tensor([[[0.125, 0.125], [0.875, 0.375]]])
    assert point_sample(maps, coords).tolist() == [[0.0, 7.0]]


def test_hungarian_recovers_a_permutation() -> None:
    perm = torch.tensor([2, 0, 3, 1])
    cost = torch.ones(6, 4)
    cost[perm, torch.arange(4)] = 0
    rows, cols = hungarian(cost)
    assert cols.tolist() == [0, 1, 2, 3] and rows.tolist() == perm.tolist()


def test_generic_loss_prefers_the_right_answer() -> None:
    torch.manual_seed(0)
    masks = _blocks(3)
    labels = torch.tensor([1, 0, 2])
    q = 5
    good_masks = torch.full((q, 16, 16), -8.0)
    good_logits = torch.full((q, 4), -4.0)
    good_logits[:, 3] = 4.0  # no-object for unmatched proposals
    for k, (m, c) in enumerate(zip(masks, labels)):
        good_masks[k + 1] = m * 16 - 8
        good_logits[k + 1] = -4.0
        good_logits[k + 1, c] = 4.0
    w = SetLossWeights(2, 5, 5, 0.1)
    good = generic_segmentation_loss(good_logits, good_masks, labels, masks, w, CFG)
    bad = generic_segmentation_loss(torch.zeros(q, 4), torch.zeros(q, 16, 16), labels, masks, w, CFG)
    # Point sampling concentrates on the boundaries, where even a right mask is unsure: the mask
    # terms stay well above zero, but far below those of a blank prediction.
    assert float(good["ce"]) < 0.01 * float(bad["ce"])
    for key in ("bce", "dice"):
        assert float(good[key]) < 0.6 * float(bad[key])


def test_grounding_loss_trains_the_argmax() -> None:
    masks = _blocks(2)
    mask_logits = torch.stack([masks[1], masks[0], torch.zeros(16, 16)]) * 16 - 8  # proposal 0 is target 1
    right = torch.tensor([[-5.0, 5.0], [5.0, -5.0], [-5.0, -5.0]])  # (proposals, targets)
    w = SetLossWeights(0.4, 1, 1)
    good = grounding_loss(right, mask_logits, masks, w, CFG)
    wrong = grounding_loss(-right, mask_logits, masks, w, CFG)
    assert float(good["ce"]) < 0.01 < float(wrong["ce"])
    # Matching looks at the masks too: the right proposals are matched either way.
    assert float(good["dice"]) == pytest.approx(float(wrong["dice"]), rel=0.5)
    blank = grounding_loss(right, torch.zeros(3, 16, 16), masks, w, CFG)
    assert float(good["dice"]) < 0.5 * float(blank["dice"])


def test_contrastive_loss() -> None:
    x = torch.eye(4)
    scale = torch.tensor(10.0)
    assert float(contrastive_loss(x, x, scale)) < float(contrastive_loss(x, x.roll(1, 0), scale))
    # Two captions of image 0: both are right, so the loss stays low.
    texts = torch.stack([x[0], x[0], x[1]])
    assert float(contrastive_loss(x[:2], texts, scale, torch.tensor([0, 0, 1]))) < 0.75


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
