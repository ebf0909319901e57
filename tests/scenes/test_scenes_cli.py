"""`find-ros scenes ...`: reproducible outputs, and clear errors for bad input."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from find_ros.cli import main
from find_ros.image_io import read_rgb
from find_ros.scenes import make_dataset, make_trajectory

TINY = (96, 72)


def _tree_hash(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``root`` (sorted, so ordering is stable)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_datasets_and_other_seeds_differ(tmp_path: Path) -> None:
    make_dataset(tmp_path / "a", 3, 21, splits=("train", "val"), size=TINY, progress=False)
    make_dataset(tmp_path / "b", 3, 21, splits=("train", "val"), size=TINY, progress=False)
    make_dataset(tmp_path / "c", 3, 22, splits=("train", "val"), size=TINY, progress=False)
    a, b, c = (_tree_hash(tmp_path / n) for n in "abc")
    assert len(a) == 1 + 6 + 6 + 6 * 2  # manifest, images, panoptic PNGs, six JSONs per split
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a if k.endswith(".jpg"))
    # An image depends only on (seed, split, index): making the val split alone renders the same pixels.
    make_dataset(tmp_path / "d", 3, 21, splits=("val",), size=TINY, progress=False)
    for index in range(3):
        alone = read_rgb(tmp_path / "d" / "val" / f"{index + 1:012d}.jpg")
        with_train = read_rgb(tmp_path / "a" / "val" / f"{index + 4:012d}.jpg")
        assert np.array_equal(alone, with_train)


def test_worker_processes_write_the_same_files(tmp_path: Path) -> None:
    make_dataset(tmp_path / "one", 4, 9, size=TINY, progress=False)
    make_dataset(tmp_path / "two", 4, 9, size=TINY, progress=False, workers=2)
    assert _tree_hash(tmp_path / "one") == _tree_hash(tmp_path / "two")


def test_same_seed_gives_byte_identical_trajectories_and_other_seeds_differ(tmp_path: Path) -> None:
    for name, seed in (("a", 2), ("b", 2), ("c", 3)):
        make_trajectory(tmp_path / name, 4, seed, size=TINY, progress=False)
    a, b, c = (_tree_hash(tmp_path / n) for n in "abc")
    assert "rosbag/rosbag.mcap" in a and "nerfstudio/transforms.json" in a and "ground_truth.json" in a
    assert a == b
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a if k != "rosbag/metadata.yaml")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["make", "--images", "0", "--seed", "1"], "--images: must be at least 1"),
        (["make", "--images", "two", "--seed", "1"], "--images: expected a whole number"),
        (["make", "--images", "2", "--seed", "1", "--size", "320by240"], "expected WIDTHxHEIGHT"),
        (["make", "--images", "2", "--seed", "1", "--size", "8x8"], "within 16..4096"),
        (["make", "--images", "2", "--seed", "-1"], "--seed: must be 0 or more"),
        (["trajectory", "--frames", "1", "--seed", "1"], "--frames: must be at least 2"),
        (["trajectory", "--frames", "2", "--seed", "1", "--path", "spiral"], "invalid choice: 'spiral'"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["scenes", argv[0], "--out", str(tmp_path / "out"), *argv[1:]])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["make", "--images", "2", "--seed", "1", "--splits", "train,,val"], "splits must be a non-empty"),
        (["make", "--images", "2", "--seed", "1", "--splits", "train,train"], "split names repeat"),
        (["make", "--images", "2", "--seed", "1", "--splits", "tr/ain"], "bad split name 'tr/ain'"),
        (["trajectory", "--frames", "3", "--seed", "1", "--fps", "0"], "--fps must be positive"),
    ],
)
def test_bad_values_end_with_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            argv: list[str], message: str) -> None:
    assert main(["scenes", argv[0], "--out", str(tmp_path / "out"), *argv[1:]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("find-ros scenes: error: ") and message in err and err.count("\n") == 1


def test_output_directory_is_protected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    base = ["scenes", "make", "--out", str(precious), "--images", "1", "--seed", "0", "--size", "64x48", "--quiet"]
    assert main(base) == 2 and "not empty" in capsys.readouterr().err
    assert main([*base, "--force"]) == 2 and "refused" in capsys.readouterr().err
    assert (precious / "notes.txt").read_text() == "keep me"

    out = tmp_path / "made"
    made = ["scenes", "make", "--out", str(out), "--images", "1", "--seed", "0", "--size", "64x48", "--quiet"]
    assert main(made) == 0 and (out / "dataset.json").is_file()
    assert main([*made, "--force"]) == 0  # an earlier output of this command may be replaced


def test_sheet_command_writes_a_picture(tmp_path: Path) -> None:
    out = tmp_path / "sheet.png"
    assert main(["scenes", "sheet", "--out", str(out), "--views", "2", "--size", "96x72", "--seed", "1"]) == 0
    image = read_rgb(out)
    assert image.shape[0] > 72 and image.shape[1] > 2 * 96 and image.std() > 10
