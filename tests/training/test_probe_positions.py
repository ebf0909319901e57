"""``python -m training.probe_positions``: the held-out linear probe of where a thing is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from training_helpers import subprocess_env

from training.probe_positions import probe


def test_the_probe_reads_a_position_that_is_in_the_states_and_not_one_that_is_not() -> None:
    rng = np.random.default_rng(0)
    images = np.repeat(np.arange(40), 5)
    centres = rng.uniform(0, 1, (len(images), 2))
    mixing = rng.normal(size=(2, 32))
    encoded = centres @ mixing + 0.05 * rng.normal(size=(len(images), 32))
    noise = rng.normal(size=(len(images), 32))
    assert probe(encoded, centres, images)["r2_x"] > 0.95
    assert probe(noise, centres, images)["r2_x"] < 0.1
    with pytest.raises(ValueError, match="too few things"):
        probe(encoded[:8], centres[:8], images[:8])


def test_probe_cli_prints_one_json_line(tiny_model: Path, synthetic_data: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "training.probe_positions", "--model", str(tiny_model), "--data", str(synthetic_data),
         "--split", "val", "--threads", "1"], env=subprocess_env(), capture_output=True, timeout=300)
    assert proc.returncode in (0, 2), proc.stderr.decode()[-2000:]
    if proc.returncode == 2:  # 8 small images may hold too few things; the error says so
        assert "too few things to probe" in proc.stderr.decode()
        return
    out = json.loads(proc.stdout)
    assert out["figure"] == "proposal_position_probe" and {"r2_x", "r2_y", "train_things", "test_things"} <= set(out)
