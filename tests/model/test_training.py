"""A training step moves the interface and leaves every foundation-model weight bit-identical."""

from __future__ import annotations

import numpy as np
import torch

from find_ros.model import FindModel
from find_ros.model.readout import match_logits
from find_ros.model.losses import (
    contrastive,
    dice_loss,
    grounding_ce,
    hungarian_match,
    pairwise_mask_cost,
    sigmoid_bce,
)


def test_training_step_changes_interface_and_never_the_encoders(tiny_dir, rgb, crop) -> None:
    model = FindModel.from_pretrained(tiny_dir, device="cpu").train()
    frozen = {k: v.clone() for k, v in model.state_dict().items() if k.startswith(("vision_encoder.", "language_encoder."))}
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert frozen and all(not p.requires_grad for n, p in model.named_parameters() if n in frozen)
    assert set(trainable) == {n for n, _ in model.named_parameters() if not n.startswith(("vision_encoder.", "language_encoder."))}
    assert not model.vision_encoder.model.training and not model.language_encoder.model.training  # no dropout in them

    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2, weight_decay=0.05)
    frame = model.encode_image(rgb)
    instruction = model.encode_instruction("[the red mug] left of <0>", [crop])
    out = model.run("interleave_grounding", frame, interleave=instruction)
    assert len(out.aux) == model.config.num_layers  # deep supervision in train mode

    # Interleave grounding loss (paper A.2): match entities to proposals by mask cost (Hungarian),
    # then CE over proposals + BCE + Dice on the matched masks, at every layer.
    target = torch.zeros(2, *frame.pixel.shape[-2:])
    target[0, 2:6, 3:9] = 1
    target[1, 8:12, 1:5] = 1
    loss = torch.zeros(())
    for pred in [*out.aux, out.predictions]:
        masks = pred.masks["entity"][0]
        proposals, entities = hungarian_match(pairwise_mask_cost(masks, target))
        order = np.argsort(entities)
        chosen = torch.as_tensor(proposals[order])
        logits = match_logits(model.heads, out, pred)
        loss = loss + 0.4 * grounding_ce(logits, chosen) + sigmoid_bce(masks[chosen], target).mean() \
            + dice_loss(masks[chosen], target).mean()
    # A retrieval term too, so that the global query and the caption path get gradients.
    images = model.embed_images(frame)
    captions = model.embed_captions(["a red mug"])
    loss = loss + contrastive(images, captions, model.heads.scale())
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


def test_eval_mode_records_no_graph(model, rgb) -> None:
    frame = model.encode_image(rgb)
    out = model.run("grounded_segmentation", frame, text=["a mug"])
    assert not frame.pixel.requires_grad and not out.predictions.masks["grounding"].requires_grad
