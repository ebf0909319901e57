"""Every surface on a converted release (decoder style "official"): the CLI commands as a user
runs them (subprocesses), and the feature field's teacher. Smoke tests: each command answers
with well-formed results from the converted model; the numbers are the goldens' business
(test_decoder_goldens.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from .conftest import fixture_root, fixture_sets, language_dir, network_input
from .test_cli import _cli

# The FIND-T-shaped fixture when there is one (the surfaces do not depend on the backbone).
SURFACE_SET = "tiny_t" if "tiny_t" in fixture_sets() else fixture_sets()[0]


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from find_ros.model.convert import import_find

    directory = fixture_root() / SURFACE_SET
    out = tmp_path_factory.mktemp("surfaces") / "model"
    import_find(directory / "checkpoint.pt", out, config_path=directory / "config.yaml",
                language=str(language_dir(directory)))
    return directory, out


def _json(*args: str) -> dict:
    done = _cli(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_ground_with_a_crop_and_segment(converted: tuple[Path, Path], tmp_path: Path) -> None:
    directory, model = converted
    image = directory / "inputs" / "image_A.png"
    crop = tmp_path / "crop.png"
    from find_ros.image_io import write_rgb

    write_rgb(crop, network_input(directory, "image_B.png")[20:80, 30:100])
    report = _json("ground", str(image), "[the blue ring] behind <0>", "--crop", str(crop), "--model", str(model))
    assert [e["label"] for e in report["entities"]] == ["the blue ring", "<0>"]
    report = _json("segment", str(image), "--classes", "sphere,cone,torus,table-merged", "--stuff", "table-merged",
                   "--model", str(model))
    assert set(report) >= {"segments"} and all(s["label"] in {"sphere", "cone", "torus", "table-merged"}
                                               for s in report["segments"])


def test_retrieve_index_and_search(converted: tuple[Path, Path], tmp_path: Path) -> None:
    directory, model = converted
    album = tmp_path / "album"
    album.mkdir()
    for name in ("image_A.png", "image_B.png"):
        shutil.copy(directory / "inputs" / name, album / name)
    report = _json("retrieve", str(album), "--text", "a white table", "--model", str(model))
    assert len(json.dumps(report)) > 0 and "image_A.png" in json.dumps(report)
    _json("index", str(album), "--out", str(tmp_path / "index"), "--model", str(model))
    crop = tmp_path / "crop.png"
    from find_ros.image_io import write_rgb

    write_rgb(crop, network_input(directory, "image_A.png")[40:100, 40:120])
    report = _json("search", str(tmp_path / "index"), "a room with <0>", "--crop", str(crop), "--model", str(model))
    assert "image_B.png" in json.dumps(report) and "image_A.png" in json.dumps(report)


def test_field_teacher(converted: tuple[Path, Path]) -> None:
    from find_ros.fields.teacher import FieldEmbedder

    directory, model = converted
    for kind in ("dense", "crops"):
        teacher = FieldEmbedder.load(model, device="cpu", kind=kind)
        rgb = network_input(directory)
        vectors = teacher.dense([rgb])[0] if kind == "dense" else teacher.images([rgb])
        assert np.isfinite(vectors.numpy()).all()
        norms = np.linalg.norm(vectors.numpy().reshape(-1, teacher.dim), axis=-1)
        assert (norms <= 1 + 1e-4).all() and np.median(norms) > 0.999  # unit vectors (a cell no proposal covers is 0)
        assert teacher.texts(["a red cone"]).shape == (1, teacher.dim)
        assert teacher.instruction("a table with <0>", [rgb[20:80, 20:90]]).shape == (1, teacher.dim)
