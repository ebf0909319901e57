"""PerceptionEngine's batched calls: every active instruction in one pass (ground_all) and the
localization re-rank's candidate frames in batches (ground_frames) give what one call per
instruction / per frame gives."""

from __future__ import annotations

import numpy as np
import pytest

from find_ros.instructions import parse_instruction
from find_ros.nodes.engine import FRAMES_PER_PASS, PerceptionEngine
from find_ros.nodes.params import GroundingParams

TEXTS = ["[the red cone]", "[the mug] left of <0>", "[a chair]", "[the blue box] near [the long table]"]


@pytest.fixture(scope="module")
def engine(tiny_model_dir) -> PerceptionEngine:
    return PerceptionEngine(GroundingParams(model=str(tiny_model_dir), device="cpu", torch_threads=1))


def _frame(seed: int, height: int = 48, width: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _encoded(engine, count):
    crop = _frame(99, 20, 16)
    return [engine.encode_instruction(parse_instruction(t, 1 if "<0>" in t else 0), [crop] if "<0>" in t else [])
            for t in TEXTS[:count]]


def _same(a, b, exact: bool) -> None:
    assert [e.label for e in a.entities] == [e.label for e in b.entities]
    for x, y in zip(a.entities, b.entities, strict=True):
        assert x.proposal == y.proposal and np.array_equal(x.mask, y.mask)
        assert x.match == y.match if exact else x.match == pytest.approx(y.match, rel=1e-5, abs=1e-5)


def test_ground_all_matches_one_call_per_instruction(engine) -> None:
    instructions = _encoded(engine, 4)
    for seed in (1, 2):
        frame = engine.encode_frame(_frame(seed))
        together = engine.ground_all(frame, instructions)
        assert len(together) == 4
        for instruction, grounded in zip(instructions, together):
            _same(engine.ground(frame, instruction), grounded, exact=False)
    # A changed set of instructions is restacked, not served from the previous stack.
    frame = engine.encode_frame(_frame(3))
    (alone,) = engine.ground_all(frame, instructions[1:2])
    _same(engine.ground(frame, instructions[1]), alone, exact=True)
    assert engine.ground_all(frame, []) == []


def test_ground_frames_matches_one_frame_at_a_time(engine) -> None:
    (instruction,) = _encoded(engine, 1)
    # More frames of one size than one pass takes, and a frame of another size in between.
    images = [_frame(10 + k) for k in range(FRAMES_PER_PASS + 2)]
    images.insert(3, _frame(7, 40, 56))
    batched = engine.ground_frames(images, instruction)
    assert len(batched) == len(images)
    for image, grounded in zip(images, batched):
        assert grounded.image_size == image.shape[:2]
        # The vision encoder's convolutions round differently in a batch (about 1e-6).
        _same(engine.ground(engine.encode_frame(image), instruction), grounded, exact=False)


def test_model_calls_run_in_inference_mode(engine) -> None:
    """Nodes never train: the engine runs the model under torch.inference_mode, whatever the caller's
    thread has on (FindModel's eval mode alone is only no_grad)."""
    import torch

    seen: list[bool] = []
    model = engine.model
    original = model.ground_many

    def spy(*args, **kwargs):
        seen.append(torch.is_inference_mode_enabled())
        return original(*args, **kwargs)

    instructions = _encoded(engine, 2)
    frame = engine.encode_frame(_frame(5))
    assert frame.pixel.is_inference()  # the frame's tensors were made in inference mode
    model.ground_many = spy
    try:
        with torch.enable_grad():
            engine.ground_all(frame, instructions)
    finally:
        del model.ground_many
    assert seen == [True]
    assert not torch.is_inference_mode_enabled()  # and the caller's mode is back
