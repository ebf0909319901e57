"""FindModel.ground_many: every instruction in one interface pass gives what one-at-a-time
grounding gives — bit for bit when the instructions have the same shape, to float rounding (and the
same choices and masks) when rows are padded to the longest instruction."""

from __future__ import annotations

import numpy as np
import pytest

from find_ros.model import GroundingResult

# Different lengths, text-only and crop entities, one and several entities each.
TEXTS = ["the red cone", "the mug left of <0>", "a chair", "[the blue box] near [the long wooden table]",
         "<0>", "something green and shiny by the door", "[the lamp] next to <0>", "the tall plant"]


def _instructions(model, crop, count):
    return [model.encode_instruction(t, [crop] if "<0>" in t else []) for t in TEXTS[:count]]


def _pairs(model, frame, instructions):
    many = model.ground_many(frame, instructions)
    assert len(many) == len(instructions)
    for instruction, got in zip(instructions, many):
        assert len(got) == 1 and isinstance(got[0], GroundingResult)
        yield model.ground(frame, instruction)[0], got[0]


def test_one_instruction_is_bit_identical(model, rgb, crop) -> None:
    frame = model.encode_image(rgb)
    for instruction in _instructions(model, crop, 3):
        ((alone, batched),) = list(_pairs(model, frame, [instruction]))
        for a, b in zip(alone.entities, batched.entities, strict=True):
            assert (a.label, a.proposal, a.match, a.score, a.visual_index) == (b.label, b.proposal, b.match, b.score, b.visual_index)
            assert np.array_equal(a.mask, b.mask)


def test_instructions_of_one_shape_are_bit_identical(model, rgb, crop) -> None:
    frame = model.encode_image(rgb)
    first = model.encode_instruction("the mug left of <0>", [crop])
    second = model.encode_instruction("the cup right of <0>", [crop[::-1].copy()])
    assert first.tokens.shape == second.tokens.shape  # no padding needed
    for alone, batched in _pairs(model, frame, [first, second, first]):
        for a, b in zip(alone.entities, batched.entities, strict=True):
            assert (a.proposal, a.match, a.score) == (b.proposal, b.match, b.score)
            assert np.array_equal(a.mask, b.mask)


@pytest.mark.parametrize("count", [1, 3, 8])
def test_padded_rows_match_one_at_a_time(model, rgb, crop, count) -> None:
    frame = model.encode_image(rgb)
    instructions = _instructions(model, crop, count)
    if count > 1:
        assert len({i.tokens.shape[0] for i in instructions}) > 1  # the rows really are padded
    for alone, batched in _pairs(model, frame, instructions):
        assert [e.label for e in alone.entities] == [e.label for e in batched.entities]
        for a, b in zip(alone.entities, batched.entities, strict=True):
            assert a.proposal == b.proposal and a.is_visual == b.is_visual and a.visual_index == b.visual_index
            assert abs(a.match - b.match) <= 1e-5 * max(1.0, abs(a.match))  # logits are scaled cosines (≤ 100)
            assert abs(a.score - b.score) <= 1e-6
            assert np.array_equal(a.mask, b.mask)


def test_a_prepared_batch_serves_every_frame(model, rgb, crop) -> None:
    instructions = _instructions(model, crop, 4)
    batch = model.batch_instructions(instructions)
    for image in (rgb, rgb[::-1].copy()):
        frame = model.encode_image(image)
        fresh = model.ground_many(frame, instructions)
        reused = model.ground_many(frame, batch)
        for f, r in zip(fresh, reused, strict=True):
            assert [(e.proposal, e.match) for e in f[0].entities] == [(e.proposal, e.match) for e in r[0].entities]
    assert model.ground_many(model.encode_image(rgb), []) == []


def test_bad_inputs_are_named(model, rgb, crop) -> None:
    frame = model.encode_image(rgb)
    with pytest.raises(ValueError, match="InstructionEmbeddings"):
        model.ground_many(frame, ["the red cone"])
    with pytest.raises(ValueError, match="one frame"):
        model.ground_many(model.encode_image([rgb, rgb]), _instructions(model, crop, 1))


def test_relational_style_stacks_too(tmp_path, rgb, crop) -> None:
    """The "relational" decoder adds positions to the content values: the shared image's values
    (projected once for the whole stack) must carry them for every row as a lone run does."""
    from find_ros.model import FindModel
    from find_ros.model.tiny import build_tiny_model

    model = FindModel.from_pretrained(build_tiny_model(tmp_path / "rel", decoder_style="relational"), device="cpu").eval()
    assert model.config.decoder.value_positions and model.stacks_instructions
    frame = model.encode_image(rgb)
    for alone, batched in _pairs(model, frame, _instructions(model, crop, 3)):
        for a, b in zip(alone.entities, batched.entities, strict=True):
            assert a.proposal == b.proposal and abs(a.match - b.match) <= 1e-5 * max(1.0, abs(a.match))
            assert np.array_equal(a.mask, b.mask)
