"""Album search: `find-ros index` then `find-ros search` rank a folder as `find-ros retrieve` does."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from find_ros.image_io import write_rgb

pytestmark = pytest.mark.timeout(300)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "find_ros.cli", *args], capture_output=True, text=True)


@pytest.fixture()
def album(tmp_path):
    rng = np.random.default_rng(4)
    folder = tmp_path / "album"
    for i in range(5):
        write_rgb(folder / f"img{i}.png", rng.integers(0, 256, (40 + 4 * i, 56, 3), dtype=np.uint8))
    write_rgb(tmp_path / "crop.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    return folder, tmp_path / "crop.png"


def test_index_then_search_gives_the_scores_of_retrieve(album, tmp_path, tiny_model_dir) -> None:
    folder, crop = album
    indexed = _cli("index", str(folder), "--out", str(tmp_path / "idx"), "--model", str(tiny_model_dir), "--json", "--batch", "2")
    assert indexed.returncode == 0, indexed.stderr
    assert json.loads(indexed.stdout)["images"] == 5

    query = "[a red sphere] next to <0>"
    searched = _cli("search", str(tmp_path / "idx"), query, "--crop", str(crop), "--top-k", "5", "--json")
    assert searched.returncode == 0, searched.stderr
    out = json.loads(searched.stdout)
    assert out["model"]["untrained"] is True and "UNTRAINED" in out["warning"]
    ranking = [(r["image"].rsplit("/", 1)[-1], r["score"]) for r in out["ranking"]]

    retrieved = _cli("retrieve", str(folder), "--instruction", query, "--crop", str(crop), "--top-k", "5",
                     "--model", str(tiny_model_dir), "--json")
    assert retrieved.returncode == 0, retrieved.stderr
    expected = [(r["image"], r["score"]) for r in json.loads(retrieved.stdout)["results"][0]["ranking"]]
    assert [name for name, _ in ranking] == [name for name, _ in expected]
    assert np.allclose([s for _, s in ranking], [s for _, s in expected], atol=1e-5)

    text = _cli("search", str(tmp_path / "idx"), "a photo of a table", "--top-k", "2", "--json")
    assert text.returncode == 0, text.stderr
    assert len(json.loads(text.stdout)["ranking"]) == 2


def test_search_refuses_a_missing_index_and_a_different_model(album, tmp_path, tiny_model_dir) -> None:
    missing = _cli("search", str(tmp_path / "nothing"), "a cup")
    assert missing.returncode == 2 and "not an album index" in missing.stderr
    folder, _ = album
    assert _cli("index", str(folder), "--out", str(tmp_path / "idx"), "--model", str(tiny_model_dir)).returncode == 0
    other = _cli("search", str(tmp_path / "idx"), "a cup", "--model", str(tmp_path))
    assert other.returncode == 2 and "same model" in other.stderr
