"""training.export: a self-contained copy whose read-out settings can be set, weights untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.export import export_model, main


def test_export_sets_inference_settings_and_keeps_the_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    from find_ros.model import FindConfig
    from find_ros.model.checkpoint import WEIGHTS_NAME

    as_trained = FindConfig.load(tiny_model_dir / "config.json")
    plain = export_model(tiny_model_dir, tmp_path / "plain")
    assert FindConfig.load(plain / "config.json").input_size == as_trained.input_size
    tuned = export_model(tiny_model_dir, tmp_path / "tuned", input_size=as_trained.input_size + 32,
                         visual_match_blend=0.5)
    config = FindConfig.load(tuned / "config.json")
    assert (config.input_size, config.visual_match_blend) == (as_trained.input_size + 32, 0.5)
    assert (tuned / WEIGHTS_NAME).read_bytes() == (tiny_model_dir / WEIGHTS_NAME).read_bytes()


def test_export_refuses_what_is_not_a_read_out_setting(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="num_layers"):
        export_model(tiny_model_dir, tmp_path / "out", num_layers=2)
    # An impossible value is named by FindConfig and nothing is written.
    assert main(["--model", str(tiny_model_dir), "--out", str(tmp_path / "bad"), "--visual-match-blend", "2"]) == 2
    assert not (tmp_path / "bad").exists()


def test_export_keeps_a_calibration_only_for_unchanged_read_out_settings_and_says_when_there_is_none(
        tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from find_ros.model import FindConfig

    calibrated = tmp_path / "calibrated"
    shutil.copytree(tiny_model_dir, calibrated)
    config = FindConfig.load(calibrated / "config.json")
    presence = {"features": ["match"], "text": {"weights": [1.0], "bias": 0.0},
                "visual": {"weights": [2.0], "bias": 0.0}, "threshold": 0.6, "calibration": {}}
    config.presence = presence
    config.save(calibrated / "config.json")

    assert FindConfig.load(export_model(calibrated, tmp_path / "same") / "config.json").presence == presence
    resized = export_model(calibrated, tmp_path / "resized", input_size=config.input_size + 32)
    assert FindConfig.load(resized / "config.json").presence is None
    # The destination's old calibration (other weights) is not carried over, and the command says so.
    assert main(["--model", str(tiny_model_dir), "--out", str(tmp_path / "same")]) == 0
    assert FindConfig.load(tmp_path / "same" / "config.json").presence is None
    assert "python -m training.calibrate_presence --model" in capsys.readouterr().err
