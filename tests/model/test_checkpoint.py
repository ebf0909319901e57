"""save_pretrained → from_pretrained gives identical outputs; broken files give clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from find_ros.model import FindConfig, FindModel


def _outputs(model: FindModel, rgb: np.ndarray, crop: np.ndarray) -> list[torch.Tensor]:
    frame = model.encode_image(rgb)
    instruction = model.encode_instruction("[the mug] near <0>", [crop])
    out = model.run("interleave_grounding", frame, interleave=instruction)
    seg = model.run("generic_segmentation", frame, **{"class": ["cup", "table"]})
    return [frame.pixel, instruction.tokens, out.predictions.masks["entity"], out.predictions.semantic["interleave"],
            seg.predictions.semantic["class"]]


@pytest.mark.parametrize("include_encoders", [True, False])
def test_round_trip_gives_identical_outputs(model, tiny_dir, tmp_path, rgb, crop, include_encoders) -> None:
    saved = model.save_pretrained(tmp_path / "copy", include_encoders=include_encoders)
    config = json.loads((saved / "config.json").read_text())
    if include_encoders:
        assert config["vision_model"] == "vision" and (saved / "vision" / "config.json").is_file()
        assert (saved / "language" / "tokenizer_config.json").is_file()
    else:  # the encoders are named where they are, as absolute directories
        assert Path(config["vision_model"]) == (tiny_dir / "vision").resolve()
        assert not (saved / "vision").exists()
    loaded = FindModel.from_pretrained(saved, device="cpu")
    for a, b in zip(_outputs(model, rgb, crop), _outputs(loaded, rgb, crop)):
        assert torch.equal(a, b)
    # Weights file holds the trainable part only; the encoders come from their own directories.
    from safetensors.torch import load_file

    keys = load_file(str(saved / "model.safetensors")).keys()
    assert keys and not any(k.startswith(("vision_encoder.", "language_encoder.")) for k in keys)


def test_self_contained_model_directory_can_move(model, tmp_path, rgb, crop) -> None:
    first = model.save_pretrained(tmp_path / "a", include_encoders=True)
    moved = shutil.move(str(first), str(tmp_path / "elsewhere"))
    reloaded = FindModel.from_pretrained(moved, device="cpu")
    assert torch.equal(_outputs(model, rgb, crop)[2], _outputs(reloaded, rgb, crop)[2])
    # Saving a model loaded from a self-contained dir back into it keeps relative references.
    reloaded.save_pretrained(moved)
    assert json.loads((Path(moved) / "config.json").read_text())["vision_model"] == "vision"


def test_config_round_trip_and_untrained_flag(model, tmp_path) -> None:
    saved = model.save_pretrained(tmp_path / "m", include_encoders=True)
    config = FindConfig.load(saved / "config.json")
    assert config.trained is False and config.hidden_dim == model.config.hidden_dim
    data = json.loads((saved / "config.json").read_text())
    data["trained"] = True
    (saved / "config.json").write_text(json.dumps(data))
    assert FindModel.from_pretrained(saved, device="cpu").untrained is False


def test_a_format_1_model_directory_loads_unchanged(model, tmp_path, rgb, crop) -> None:
    """Configs saved before format 2 (no neck choice, no released-model settings) read as before."""
    saved = model.save_pretrained(tmp_path / "old", include_encoders=True)
    data = json.loads((saved / "config.json").read_text())
    added = ("neck", "neck_layers", "spatial_memories", "object_mask_threshold", "overlap_threshold",
             "detections_per_image", "source")
    old = {k: v for k, v in data.items() if k not in added} | {"format": "find_ros.model/1"}
    (saved / "config.json").write_text(json.dumps(old))
    loaded = FindModel.from_pretrained(saved, device="cpu")
    assert loaded.config.neck == "find_ros" and not hasattr(loaded, "point_sampling")
    for a, b in zip(_outputs(model, rgb, crop), _outputs(loaded, rgb, crop)):
        assert torch.equal(a, b)


@pytest.fixture
def saved(model, tmp_path) -> Path:
    return model.save_pretrained(tmp_path / "m", include_encoders=True)


def test_corrupt_weights_file_is_a_clear_error(saved) -> None:
    weights = saved / "model.safetensors"
    weights.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ValueError, match="model.safetensors: corrupt or not a safetensors file"):
        FindModel.from_pretrained(saved, device="cpu")


def test_truncated_weights_file_is_a_clear_error(saved) -> None:
    weights = saved / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ValueError, match="corrupt or not a safetensors file"):
        FindModel.from_pretrained(saved, device="cpu")


def test_weights_that_do_not_fit_the_config_are_named(saved) -> None:
    data = json.loads((saved / "config.json").read_text())
    data["hidden_dim"] = 64
    (saved / "config.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="does not fit this model config.*wrong shape"):
        FindModel.from_pretrained(saved, device="cpu")


@pytest.mark.parametrize(
    "edit, error, message",
    [
        (lambda p: (p / "config.json").write_text("{not json"), ValueError, "not valid JSON"),
        (lambda p: (p / "config.json").write_text('{"vision_model": "vision", "language_model": "language", "colour": 1}'),
         ValueError, "unknown model config keys: colour"),
        (lambda p: (p / "config.json").write_text('{"format": "other/9", "vision_model": "v", "language_model": "l"}'),
         ValueError, "unsupported model config format"),
        (lambda p: (p / "config.json").unlink(), FileNotFoundError, "model config not found"),
        (lambda p: (p / "model.safetensors").unlink(), FileNotFoundError, "model weights not found"),
        (lambda p: shutil.rmtree(p / "vision"), ValueError, "cannot load the vision model 'vision': not a directory"),
    ],
)
def test_broken_model_directories_name_the_problem(saved, edit, error, message) -> None:
    edit(saved)
    with pytest.raises(error, match=message):
        FindModel.from_pretrained(saved, device="cpu")


def test_missing_model_directory(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="model directory not found"):
        FindModel.from_pretrained(tmp_path / "nothing")


def test_invalid_config_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        FindConfig(vision_model="v", language_model="l", hidden_dim=30, num_heads=4)
    with pytest.raises(ValueError, match="class_template must contain"):
        FindConfig(vision_model="v", language_model="l", class_template="no placeholder")
