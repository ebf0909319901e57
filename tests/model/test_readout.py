"""The read-outs: a target takes its argmax proposal, by semantic similarity for text and by pixel
embedding (blended as configured) for image regions — the same match logits training uses."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def test_grounding_read_out_is_argmax_matching(model, rgb) -> None:
    """The chosen proposal is the argmax of the target's similarity to every proposal, and its mask
    is that proposal's mask logit > 0 at image size (paper eq. 10-12)."""
    from find_ros.model.readout import match_logits, upsample_masks

    emb = model.encode_image(rgb)
    out = model.run("grounded_segmentation", emb, text=["a red mug"])
    p = out.predictions
    with torch.no_grad():
        logits = match_logits(model.heads, out, p)
        semantic = model.heads.similarity(p.semantic["text"][0], p.semantic["grounding"][0])
    assert not logits.requires_grad
    assert torch.equal(logits, semantic)  # text targets match by semantic similarity
    best = int(logits[0].argmax())
    entity = model.readout(out)[0].entities[0]
    assert entity.proposal == best
    assert entity.score == pytest.approx(float(logits[0].softmax(-1)[best]), rel=1e-5)
    assert entity.match == pytest.approx(float(logits[0, best]), rel=1e-5)  # the raw logit, for ranking frames
    expected = (upsample_masks(p.masks["grounding"][0, best : best + 1], emb, 0)[0] > 0).numpy()
    assert np.array_equal(entity.mask, expected)


@pytest.mark.parametrize("blend", [0.0, 0.5, 1.0])
def test_visual_entity_read_out_blends_pixel_and_semantic_matching(model, rgb, crop, blend) -> None:
    """A visual entity's proposal is the argmax of (1 - blend) x pixel-reference logits + blend x
    semantic logits (blend 0: the paper's pixel matching); a text entity always matches semantically."""
    import dataclasses

    from find_ros.model.readout import match_logits

    frame = model.encode_image(rgb)
    instruction = model.encode_instruction("[the red mug] near <0>", [crop])
    out = model.predict(model.run("interleave_grounding", frame, interleave=instruction))
    p, spec = out.predictions, out.prototype.readout
    targets = out.prompts[out.prototype.query(spec.targets).per_group_of]
    with torch.no_grad():
        semantic = model.heads.similarity(p.semantic[spec.targets][0], p.semantic[spec.proposals][0])
        pixel = model.heads.similarity(targets.pixel_refs[0], p.pixel[spec.proposals][0])
        blended = match_logits(model.heads, out, p, 0, blend)
    assert torch.allclose(blended[0], semantic[0]) and torch.allclose(blended[1], (1 - blend) * pixel[1] + blend * semantic[1])
    original = model.config
    model.config = dataclasses.replace(original, visual_match_blend=blend)
    try:
        entities = model.readout(out)[0].entities
    finally:
        model.config = original
    assert [e.proposal for e in entities] == blended.argmax(-1).tolist()
    assert entities[1].match == pytest.approx(float(blended[1].max()), rel=1e-5)


def test_visual_match_blend_must_be_a_share() -> None:
    from find_ros.model import FindConfig

    with pytest.raises(ValueError, match="visual_match_blend"):
        FindConfig(vision_model="v", language_model="l", visual_match_blend=1.5)


@pytest.mark.parametrize("options, message", [
    ({"object_threshold": 1.5}, "object_threshold must be in"),
    ({"overlap_threshold": -0.1}, "overlap_threshold must be in"),
    ({"top_k": 0}, "top_k must be positive"),
    ({"modes": ("panoptic", "depth")}, r"unknown segmentation mode\(s\) \['depth'\]"),
])
def test_segmentation_settings_refuse_what_cannot_work(model, rgb, options, message) -> None:
    from find_ros.model import SegmentationSettings

    with pytest.raises(ValueError, match=message):
        SegmentationSettings(**options)
    with pytest.raises(ValueError, match=message):  # the same check on the model's door
        model.segment(model.encode_image(rgb), ["cup"], **options)
