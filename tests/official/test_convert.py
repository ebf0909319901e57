"""`find_ros.model.convert` on the reduced checkpoints in the released format: they convert, a
wrapped copy converts to the same bytes, and a misfit is refused with every bad key named."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from find_ros.model.convert import CheckpointMismatch, import_find, read_checkpoint
from find_ros.model.config import FindConfig

from .conftest import language_dir

REPO = Path(__file__).resolve().parents[2]
WEIGHT_FILES = ("model.safetensors", "vision/model.safetensors", "vision/config.json")


def convert(directory: Path, source: Path, out: Path, **kwargs) -> dict:
    return import_find(source, out, config_path=directory / "config.yaml", language=str(language_dir(directory)),
                       **kwargs)


def test_checkpoint_converts_with_provenance(fixture_dir: Path, tmp_path: Path) -> None:
    report = convert(fixture_dir, fixture_dir / "checkpoint.pt", tmp_path / "out")
    config = FindConfig.load(tmp_path / "out" / "config.json")
    assert config.trained and config.neck == "transformer_fpn" and config.vision_model == "vision"
    assert config.source["sha256"] == hashlib.sha256((fixture_dir / "checkpoint.pt").read_bytes()).hexdigest()
    assert config.source["file"] == "checkpoint.pt" and config.source["backbone"] in ("focal_dw", "focal")
    # Values that only the YAML knows are the fixture's, not the released defaults.
    assert (config.object_mask_threshold, config.overlap_threshold, config.detections_per_image) == (0.2, 0.4, 10)
    assert config.language_layer == -12 and config.max_class_tokens == 150
    keys = (fixture_dir / "keys.tsv").read_text().splitlines()
    assert report["tensors"] == len(keys) and report["ignored_language_keys"] == 0
    assert all((tmp_path / "out" / name).is_file() for name in WEIGHT_FILES)


def test_wrapped_checkpoint_converts_to_the_same_bytes(fixture_dir: Path, tmp_path: Path) -> None:
    wrapped = fixture_dir / "checkpoint_wrapped.pt"
    if not wrapped.is_file():  # the fixture set ships no wrapped copy: make one the same way
        state = read_checkpoint(fixture_dir / "checkpoint.pt").state
        wrapped = tmp_path / "checkpoint_wrapped.pt"
        torch.save({"model": {"module." + k: v for k, v in state.items()}}, wrapped)
    convert(fixture_dir, fixture_dir / "checkpoint.pt", tmp_path / "flat")
    report = convert(fixture_dir, wrapped, tmp_path / "wrapped")
    assert "'model'" in report["source"]["wrapper"] and "module." in report["source"]["wrapper"]
    for name in WEIGHT_FILES:
        assert (tmp_path / "flat" / name).read_bytes() == (tmp_path / "wrapped" / name).read_bytes(), name
    flat, wrap = (json.loads((tmp_path / d / "config.json").read_text()) for d in ("flat", "wrapped"))
    assert flat.pop("source")["sha256"] != wrap.pop("source")["sha256"]
    assert flat == wrap


def test_misfit_checkpoint_is_refused_with_every_bad_key_named(fixture_dir: Path, tmp_path: Path) -> None:
    state = read_checkpoint(fixture_dir / "checkpoint.pt").state
    gone = "backbone.layers.1.blocks.0.gamma_2"
    extra = "sem_seg_head.predictor.not_a_released_tensor"
    misshaped = "sem_seg_head.pixel_decoder.layer_2.weight"
    del state[gone]
    state[extra] = torch.zeros(3)
    state[misshaped] = torch.zeros(*state[misshaped].shape[:-1], 1)
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    with pytest.raises(CheckpointMismatch) as caught:
        convert(fixture_dir, bad, tmp_path / "out")
    assert caught.value.missing == [gone] and caught.value.unexpected == [extra]
    assert len(caught.value.wrong_shape) == 1 and caught.value.wrong_shape[0].startswith(misshaped)
    assert all(name in str(caught.value) for name in (gone, extra, misshaped))
    assert not (tmp_path / "out").exists()  # decided before anything is written


def test_language_model_keys_are_ignored_and_dry_run_writes_nothing(fixture_dir: Path, tmp_path: Path) -> None:
    state = read_checkpoint(fixture_dir / "checkpoint.pt").state
    llama = {"sem_seg_head.predictor.lang_encoder.lang_encoder.model.layers.0.self_attn.q_proj.weight": torch.zeros(4, 4),
             "sem_seg_head.predictor.lang_encoder.lang_encoder.lm_head.weight": torch.zeros(8, 4)}
    source = tmp_path / "with_llama.pt"
    torch.save({"state_dict": {**state, **llama}}, source)
    report = convert(fixture_dir, source, tmp_path / "out", dry_run=True)
    assert report["ignored_language_keys"] == 2 and not (tmp_path / "out").exists()
    assert set(report["mapping"]) == set(state)
    assert report["mapping"]["sem_seg_head.predictor.class_embed"] == {"kind": "transpose", "to": ["model:heads.semantic.weight"]}


def test_a_config_of_another_model_is_refused(tmp_path: Path) -> None:
    from .conftest import fixture_root, fixture_sets

    sets = fixture_sets()
    if len(sets) < 2:
        pytest.fail("needs two fixture sets with different sizes")
    a, b = (fixture_root() / s for s in sets[:2])
    with pytest.raises(ValueError, match="does not match its config"):
        import_find(a / "checkpoint.pt", tmp_path / "out", config_path=b / "config.yaml", language=str(language_dir(a)))


def test_nothing_else_in_the_package_loads_pickles() -> None:
    """Pickle readers in find_ros: the converter, and find-field's loader of nerfstudio's own
    checkpoints; both through torch.load(weights_only=True). No pickle module anywhere."""
    import ast

    readers = {}
    for path in sorted((REPO / "find_ros").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] in ("pickle", "dill", "cloudpickle") for n in names), path
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
                safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                           for k in node.keywords)
                readers[path.relative_to(REPO).as_posix()] = safe
    assert readers == {"find_ros/model/convert.py": True, "find_ros/fields/loading.py": True}


def test_a_vision_directory_that_does_not_fit_its_config_is_named(fixture_dir: Path, tmp_path: Path) -> None:
    from find_ros.model.encoders import load_vision_encoder

    convert(fixture_dir, fixture_dir / "checkpoint.pt", tmp_path / "out")
    vision = tmp_path / "out" / "vision"
    spec = json.loads((vision / "config.json").read_text())
    assert load_vision_encoder("vision", tmp_path / "out").channels[0] == spec["embed_dim"]
    spec["embed_dim"] *= 2
    (vision / "config.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=r"vision/model\.safetensors does not fit"):
        load_vision_encoder("vision", tmp_path / "out")
