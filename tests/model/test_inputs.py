"""Bad inputs are refused with a message that says what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from find_ros.instructions import MAX_INSTRUCTION_CHARS
from find_ros.model import RegionRef, SpatialPrompt, TokenSet


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((10, 10), dtype=np.uint8), "expected shape \\(H, W, 3\\)"),
        (np.zeros((10, 10, 4), dtype=np.uint8), "expected shape \\(H, W, 3\\)"),
        (np.zeros((10, 10, 3), dtype=np.float32), "expected dtype uint8"),
        (np.zeros((0, 10, 3), dtype=np.uint8), "outside 1..16384"),
        ([], "non-empty list"),
        ("image.png", "RGB uint8 array"),
        ([np.zeros((4, 4, 3), np.uint8), "x"], "image 1: expected an RGB uint8 numpy array"),
    ],
)
def test_malformed_images(model, images, message) -> None:
    with pytest.raises(ValueError, match=message):
        model.encode_image(images)


@pytest.mark.parametrize(
    "text, visuals, message",
    [
        ("", [], "instruction text is empty"),
        ("   ", [], "instruction text is empty"),
        ("x" * (MAX_INSTRUCTION_CHARS + 1), [], "the limit is"),
        ("the mug left of <0>", [], "placeholder <0> has no visual entity"),
        ("the mug", "not-a-list", "visuals must be a list"),
        ("the mug near <0>", [np.zeros((4, 4), np.uint8)], "image 0: expected shape"),
        ("the mug near <0>", [{"box": [0, 0, 1, 1]}], "visual entity <0> must be an RGB uint8 crop or a RegionRef"),
        ("the [mug", [], "malformed markup"),
    ],
)
def test_bad_instructions(model, text, visuals, message) -> None:
    with pytest.raises(ValueError, match=message):
        model.encode_instruction(text, visuals)


def test_a_parsed_instruction_is_encoded_as_its_text_and_checked_against_its_visuals(model, crop) -> None:
    """A node parses an instruction once and hands the parsed form to the model."""
    import torch

    from find_ros.instructions import parse_instruction

    parsed = parse_instruction("[the mug] left of <0>", 1)
    from_parsed = model.encode_instruction(parsed, [crop])
    from_text = model.encode_instruction("[the mug] left of <0>", [crop])
    assert from_parsed.instruction is parsed and torch.equal(from_parsed.tokens, from_text.tokens)
    with pytest.raises(ValueError, match=r"names visual entities \[0\], but 2 were given"):
        model.encode_instruction(parsed, [crop, crop])
    with pytest.raises(ValueError, match=r"names visual entities \[0\], but 0 were given"):
        model.encode_instruction(parsed)


def test_instruction_longer_than_the_token_limit(model) -> None:
    long = " ".join(["the red mug on the wooden table"] * 40)  # under the character limit, over 32 tokens
    assert len(long) < MAX_INSTRUCTION_CHARS
    with pytest.raises(ValueError, match="tokens long; the language model reads at most 32"):
        model.encode_instruction(long)


def test_bad_regions_and_spatial_prompts(model, rgb) -> None:
    frame = model.encode_image(rgb)
    with pytest.raises(ValueError, match="is empty: need x1 > x0"):
        RegionRef(frame, box=(10, 10, 5, 20))
    with pytest.raises(ValueError, match="lies outside the 80x48 image"):
        RegionRef(frame, box=(100, 100, 120, 120))
    with pytest.raises(ValueError, match="exactly one of box or mask"):
        RegionRef(frame)
    with pytest.raises(ValueError, match="index 3 out of range"):
        RegionRef(frame, box=(0, 0, 4, 4), index=3)
    with pytest.raises(ValueError, match="mask has shape"):
        RegionRef(frame, mask=np.ones((5, 5), bool))
    with pytest.raises(ValueError, match="point prompt needs shape"):
        SpatialPrompt("point", np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="non-finite"):
        SpatialPrompt("scribble", np.array([[0, 0], [np.nan, 1]]))
    with pytest.raises(ValueError, match="lies outside"):
        model.segment_interactive(frame, [SpatialPrompt("point", np.array([500, 500]))])
    with pytest.raises(ValueError, match="only negative prompts"):
        model.segment_interactive(frame, [SpatialPrompt("point", np.array([5, 5]), positive=False)])


def test_bad_task_calls(model, rgb) -> None:
    frame = model.encode_image(rgb)
    with pytest.raises(ValueError, match="predicts masks and needs image embeddings"):
        model.run("interleave_grounding", None, interleave=model.encode_instruction("a cup"))
    with pytest.raises(ValueError, match="classes must be a list"):
        model.segment(frame, "cup,table")
    with pytest.raises(ValueError, match="no classes given"):
        model.segment(frame, [])
    with pytest.raises(ValueError, match="takes InstructionEmbeddings"):
        model.run("interleave_grounding", frame, interleave=["a cup"])
    with pytest.raises(ValueError, match="must come from FindModel.encode_image"):
        model.run("grounded_segmentation", rgb, text=["a cup"])
    with pytest.raises(ValueError, match="non-empty list of captions or of InstructionEmbeddings"):
        model.retrieve(frame, [])
    with pytest.raises(ValueError, match="text 1 is empty"):
        model.encode_texts(["a cup", ""])
    with pytest.raises(ValueError, match="groups must be"):
        TokenSet(frame.pixel.new_zeros(1, 3, 32), frame.pixel.new_zeros(2, 4).bool(), ("a", "b"))
