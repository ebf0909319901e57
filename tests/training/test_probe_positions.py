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
    # The fixture is deterministic (seed 3): its 8 val images hold 45 things, enough to probe.
    proc = _probe_cli(tiny_model, synthetic_data)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    out = json.loads(proc.stdout)
    assert out["figure"] == "proposal_position_probe" and {"r2_x", "r2_y", "train_things", "test_things"} <= set(out)
    assert out["train_things"] >= 10 and out["test_things"] >= 10


def test_probe_cli_refuses_too_few_things_with_the_reason(tiny_model: Path, synthetic_data: Path) -> None:
    proc = _probe_cli(tiny_model, synthetic_data, "--limit", "2")  # two images: under 10 things a half
    assert proc.returncode == 2 and not proc.stdout
    assert "too few things to probe" in proc.stderr.decode()


def _probe_cli(model: Path, data: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training.probe_positions", "--model", str(model), "--data", str(data),
         "--split", "val", "--threads", "1", *extra], env=subprocess_env(), capture_output=True, timeout=300)
