"""`find-ros tasks | ground | segment | retrieve` as a user runs them: subprocesses for the smoke
tests, in-process ``find_ros.cli.main`` for the rest (same code, no interpreter start-up each time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from find_ros.image_io import read_rgb, write_rgb


def _cli(*args: str, cache: Path | None = None, timeout: int = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("FIND_ROS_MODEL", None)
    if cache is not None:
        env["FIND_ROS_CACHE"] = str(cache)
    return subprocess.run([sys.executable, "-m", "find_ros.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=Path(__file__).resolve().parents[2])


def _main(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    from find_ros.cli import main

    rc = main(list(args))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    folder = root / "album"
    for i in range(3):
        write_rgb(folder / f"{i}.png", rng.integers(0, 256, (40 + 8 * i, 64, 3), dtype=np.uint8))
    crop = write_rgb(root / "crop.png", rng.integers(0, 256, (16, 20, 3), dtype=np.uint8))
    broken = root / "broken.png"
    broken.write_bytes(b"this is not a png")
    (root / "empty").mkdir()
    return {"image": folder / "0.png", "folder": folder, "crop": crop, "broken": broken, "root": root}


def test_tasks_lists_every_prototype() -> None:
    done = _cli("tasks")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["generic_segmentation", "grounded_segmentation", "interactive_segmentation",
                                                  "image_text_retrieval", "interleave_grounding", "interleave_retrieval"]
    assert all("prompts=" in line and "queries=" in line for line in lines)


def test_ground_json_with_crop_and_overlay(tiny_dir, files) -> None:
    overlay = files["root"] / "overlay.png"
    done = _cli("ground", str(files["image"]), "the red mug left of <0>", "--crop", str(files["crop"]),
                "--model", str(tiny_dir), "--json", "--save-overlay", str(overlay))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert [e["label"] for e in out["entities"]] == ["the red mug left of <0>", "<0>"]
    for e in out["entities"]:
        assert set(e) == {"label", "found", "confidence", "score", "box", "mask_area"} and 0 < e["score"] <= 1
        assert isinstance(e["found"], bool) and 0.0 <= e["confidence"] <= 1.0
        assert e["box"] is None or (len(e["box"]) == 4 and 0 <= e["box"][0] < e["box"][2] <= 64)
    assert {"load_model", "encode_image", "encode_instruction", "ground", "total"} <= set(out["timing_ms"])
    assert out["model"]["untrained"] is True and "UNTRAINED" in out["warning"] and "UNTRAINED" in done.stderr
    assert read_rgb(overlay).shape == (40, 64, 3)


def test_default_model_is_the_labelled_untrained_placeholder(files, tmp_path) -> None:
    from find_ros.model import default_model_dir

    done = _cli("ground", str(files["image"]), "a red mug", "--json", cache=tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    shipped = default_model_dir()
    if shipped is None:  # no trained model found: the cache placeholder, loudly labelled
        assert Path(out["model"]["path"]).parent == tmp_path and out["model"]["untrained"] is True
        assert "UNTRAINED" in out["warning"] and "WARNING: UNTRAINED" in done.stderr
    else:
        assert Path(out["model"]["path"]) == shipped


def test_segment_and_retrieve(tiny_dir, files, capsys) -> None:
    rc, out, err = _main(capsys, "segment", str(files["image"]), "--classes", "cup, table,floor", "--stuff", "floor",
                         "--threshold", "0", "--overlap", "0", "--model", str(tiny_dir), "--json")
    assert rc == 0, err
    result = json.loads(out)
    assert result["labels"] == ["cup", "table", "floor"] and result["image_size"] == [40, 64] and result["segments"]
    assert all(s["label"] in result["labels"] for s in result["segments"])
    rc, out, err = _main(capsys, "retrieve", str(files["folder"]), "--text", "a red mug", "--text", "a dog", "--instruction",
                         "a room with <0>", "--crop", str(files["crop"]), "--top-k", "2", "--model", str(tiny_dir), "--json")
    assert rc == 0, err
    result = json.loads(out)
    assert result["num_images"] == 3 and [r["kind"] for r in result["results"]] == ["text", "text", "interleave"]
    for r in result["results"]:
        scores = [hit["score"] for hit in r["ranking"]]
        assert len(scores) == 2 and scores == sorted(scores, reverse=True)
        assert all(hit["image"] in {"0.png", "1.png", "2.png"} for hit in r["ranking"])
    rc, out, _ = _main(capsys, "retrieve", str(files["folder"]), "--text", "a red mug", "--model", str(tiny_dir))
    assert rc == 0 and out.startswith("[UNTRAINED]") and "text query 'a red mug':" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["ground", "{image}", "the mug left of <0>"], "placeholder <0> has no visual entity"),
        (["ground", "{broken}", "a mug"], "not a readable image"),
        (["ground", "{root}/missing.png", "a mug"], "image file not found"),
        (["segment", "{image}", "--classes", " , "], "--classes needs at least one class name"),
        (["segment", "{image}", "--classes", "cup", "--threshold", "1.5"], "object_threshold must be in [0, 1]"),
        (["retrieve", "{root}/empty", "--text", "x"], "no images"),
        (["ground", "{image}", "a mug", "--model", "{root}/corrupt"], "corrupt or not a safetensors file"),
    ],
)
def test_user_errors_end_with_one_clear_line(tiny_dir, files, capsys, args, message) -> None:
    import shutil

    corrupt = files["root"] / "corrupt"
    if not corrupt.exists():
        shutil.copytree(tiny_dir, corrupt)
        (corrupt / "model.safetensors").write_bytes(b"\x00" * 64)
    args = [a.format(image=files["image"], broken=files["broken"], root=files["root"]) for a in args]
    if "--model" not in args:
        args += ["--model", str(tiny_dir)]
    rc, _, err = _main(capsys, *args)
    assert rc == 2
    assert message in err and err.strip().count("\n") <= 1  # at most the UNTRAINED warning, then the error
