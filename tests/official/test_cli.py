"""`find-ros import-find` then `find-ros ground --model DIR`, as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import REPO, language_dir, network_input


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("FIND_ROS_MODEL", None)
    return subprocess.run([sys.executable, "-m", "find_ros.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600, cwd=REPO)


def test_import_find_then_ground(fixture_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    done = _cli("import-find", str(fixture_dir / "checkpoint.pt"), "--out", str(out),
                "--language", str(language_dir(fixture_dir)))
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout and (out / "vision" / "model.safetensors").is_file()
    image = fixture_dir / "inputs" / "image_A.png"
    done = _cli("ground", str(image), "[a thing]", "--model", str(out), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["model"]["untrained"] is False
    (entity,) = report["entities"]
    height, width = network_input(fixture_dir).shape[:2]
    assert entity["label"] == "a thing" and 0 <= entity["box"][0] <= entity["box"][2] <= width
    assert 0 <= entity["box"][1] <= entity["box"][3] <= height


def test_import_find_names_every_bad_key_and_writes_nothing(tmp_path: Path) -> None:
    import torch

    bad = tmp_path / "bad.pt"
    torch.save({"backbone.patch_embed.proj.weight": torch.zeros(8, 3, 7, 7), "unrelated.weight": torch.zeros(2)}, bad)
    done = _cli("import-find", str(bad), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    line = done.stderr.strip()
    assert "missing" in line and "sem_seg_head.predictor.query_feat.weight" in line and "unrelated.weight" in line
    assert not (tmp_path / "out").exists()
