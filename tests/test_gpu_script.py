"""benchmarks/gpu.sh, the one-command GPU run, runs here on the CPU (small) so it cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_gpu_script_runs_every_step_on_the_cpu_and_prints_json_figures() -> None:
    env = dict(os.environ, PYTHON=sys.executable)
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu.sh"), "--device", "cpu", "--quick"],
                          capture_output=True, text=True, env=env, timeout=840)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    stages = {(line["config"], line["stage"]) for line in lines if line.get("benchmark") == "model_latency"}
    assert stages == {(c, s) for c in ("default", "find-t")
                      for s in ("vision_encoding", "instruction_encoding", "interface", "heads")}
    assert all(line["dtype"] == "float32" and line["device"] == "cpu" for line in lines if line.get("benchmark") == "model_latency")
    figures = {line.get("figure") for line in lines}
    assert {"processed_fps", "latency_ms_p50", "latency_ms_p95"} <= figures  # the perception graph
    assert {"insert_rate", "query_memory", "save", "load"} <= figures        # the memory
    assert "device cpu" in done.stderr
