"""``python -m training.evaluate`` prints one strict-JSON object with every metric of the issue."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from training_helpers import subprocess_env


def test_evaluate_cli_reports_every_task(tiny_model: Path, synthetic_data: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "training.evaluate", "--model", str(tiny_model), "--data", str(synthetic_data),
         "--split", "val", "--json", "--no-progress", "--threads", "1"],
        env=subprocess_env(), capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    out = json.loads(proc.stdout, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert out["split"] == "val" and out["images"] == 8 and out["untrained"] is True
    for key in ("PQ", "SQ", "RQ", "PQ_th", "PQ_st", "mAP", "AP50", "mIoU"):
        assert key in out["generic"]
    for task in ("grounded", "interleave_grounding"):
        assert set(out[task]) == {"cIoU", "mIoU", "precision@0.5", "count"} and out[task]["count"] > 0
        assert 0.0 <= out[task]["cIoU"] <= 1.0
    itr = out["image_text_retrieval"]
    assert {f"{d}@{k}" for d in ("IR", "TR") for k in (1, 5, 10)} <= set(itr) and itr["queries"] == 5 * 8
    assert itr["IR@10"] == 1.0  # a gallery of 8: everything is in the top 10
    assert {"IR@5", "IR@10"} <= set(out["interleave_retrieval"])


def test_evaluate_cli_names_a_missing_split(tiny_model: Path, synthetic_data: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "training.evaluate", "--model", str(tiny_model), "--data", str(synthetic_data),
         "--split", "test", "--json"], env=subprocess_env(), capture_output=True, timeout=120)
    assert proc.returncode == 2
    assert "no image directory for split 'test'" in proc.stderr.decode()
