"""The training losses on hand-made cases whose answers are known, and a training step through
them on a tiny model: gradients reach every trainable part and never a frozen encoder."""

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


def test_a_training_step_moves_the_interface_and_never_the_encoders(tiny_model) -> None:
    from find_ros.model import FindModel
    from find_ros.model.readout import match_logits

    model = FindModel.from_pretrained(tiny_model, device="cpu").train()
    frozen = {k: v.clone() for k, v in model.state_dict().items() if k.startswith(("vision_encoder.", "language_encoder."))}
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert frozen and all(not p.requires_grad for n, p in model.named_parameters() if n in frozen)
    assert set(trainable) == {n for n, _ in model.named_parameters() if not n.startswith(("vision_encoder.", "language_encoder."))}
    assert not model.vision_encoder.model.training and not model.language_encoder.model.training  # no dropout in them

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(48, 80, 3), dtype=np.uint8)
    crop = rng.integers(0, 256, size=(20, 24, 3), dtype=np.uint8)
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2, weight_decay=0.05)
    frame = model.encode_image(rgb)
    instruction = model.encode_instruction("[the red mug] left of <0>", [crop])
    out = model.run("interleave_grounding", frame, interleave=instruction)
    assert len(out.aux) == model.config.num_layers  # deep supervision in train mode

    # Interleave grounding loss (paper A.2) at every layer: the read-out's own match logits, each
    # entity's proposal chosen by Hungarian matching, CE over proposals + BCE + Dice on its mask.
    target = torch.zeros(2, *frame.pixel.shape[-2:])
    target[0, 2:6, 3:9] = 1
    target[1, 8:12, 1:5] = 1
    loss = torch.zeros(())
    for pred in [*out.aux, out.predictions]:
        parts = grounding_loss(match_logits(model.heads, out, pred).T, pred.masks["entity"][0], target,
                               SetLossWeights(0.4, 1, 1), CFG)
        loss = loss + 0.4 * parts["ce"] + parts["bce"] + parts["dice"]
    # A retrieval term too, so that the global query and the caption path get gradients.
    loss = loss + contrastive_loss(model.embed_images(frame), model.embed_captions(["a red mug"]), model.heads.scale())
    optimizer.zero_grad()
    loss.backward()
    assert all(p.grad is None for n, p in model.named_parameters() if n in frozen)
    optimizer.step()

    after = model.state_dict()
    for k, v in frozen.items():
        assert torch.equal(after[k], v), f"frozen weight {k} changed"
    changed = {n for n, p in model.named_parameters() if n in trainable and not torch.equal(p.detach(), trainable[n])}
    for part in ("neck.", "sampler.text_projection.", "interface.layers.0.content.", "interface.layers.2.conditional.",
                 "interface.query_feat.", "heads.semantic.", "heads.pixel.", "heads.logit_scale"):
        assert any(n.startswith(part) for n in changed), f"no weight under {part} changed"


def test_deep_supervision_scores_every_layer_once(tiny_model) -> None:
    """The objective scores the initial queries, each layer's output and the final one: num_layers + 1
    predictions, each a different layer (layer L-1 was once left out as a supposed duplicate)."""
    from find_ros.model import FindModel
    from training.objective import FindObjective, LossConfig

    model = FindModel.from_pretrained(tiny_model, device="cpu").train()
    rng = np.random.default_rng(1)
    frame = model.encode_image(rng.integers(0, 256, size=(48, 80, 3), dtype=np.uint8))
    out = model.run("interleave_grounding", frame, interleave=model.encode_instruction("[the red mug]"))
    weights = {t: SetLossWeights(1, 1, 1) for t in ("generic_segmentation", "grounded_segmentation",
                                                   "interactive_segmentation", "interleave_grounding")}
    layers = FindObjective(model, LossConfig(weights=weights), ("mug",)).supervised_layers(out)
    assert len(layers) == model.config.num_layers + 1
    assert layers[-1] is out.predictions and layers[-2] is out.aux[-1]
    masks = [p.masks["entity"] for p in layers]
    assert all(not torch.equal(a, b) for i, a in enumerate(masks) for b in masks[i + 1:])  # no layer twice
    off = FindObjective(model, LossConfig(weights=weights, deep_supervision=False), ("mug",))
    assert off.supervised_layers(out) == [out.predictions]
