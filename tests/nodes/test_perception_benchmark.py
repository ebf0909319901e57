"""benchmarks/perception.py keeps working: a short soak (malformed frames, instruction churn) and a
short steady run, on the tiny model. Only the shape of the figures is asserted; speed is the
benchmark's to measure, never a test's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)


def _run(tiny_model_dir: Path, *extra: str) -> dict[str, dict]:
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "perception.py"), "--json", "--model", str(tiny_model_dir),
         "--size", "160x120", "--random", "--reliable", *extra],
        capture_output=True, text=True, timeout=280,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return {line["figure"] + str(line.get("minute", "")): line for line in lines}


def test_a_short_soak_reports_every_figure(tiny_model_dir) -> None:
    figures = _run(tiny_model_dir, "--soak", "--duration", "8")
    assert figures["soak_seconds"]["valid"] > 0 and figures["soak_seconds"]["bombs"] > 0
    minute = figures["latency_ms_minute0"]
    assert minute["results"] > 0 and minute["p50"] <= minute["p95"] and minute["rss_mb"] > 0
    assert figures["frames_processed"]["value"] > 0
    for name in ("frames_bad", "frames_too_large", "instruction_answers", "next_answer_ms_after_valid",
                 "next_answer_ms_after_bomb", "rss_mb_start", "rss_mb_end"):
        assert name in figures, name
    assert figures["rss_mb_end"]["ratio"] > 0


def test_a_short_steady_run_reports_every_figure(tiny_model_dir) -> None:
    figures = _run(tiny_model_dir, "--seconds", "4", "--instructions", "3", "--model-seconds", "2", "--rounds", "2")
    processed = figures["processed_fps"]
    assert processed["value"] > 0 and processed["instructions"] == 3 and processed["rounds"] == 2
    assert 0 < processed["frames_answered"] <= processed["frames_sent"]
    for name in ("latency_ms_p50", "latency_ms_p95", "latency_p95_frame_periods", "frames_received", "frames_dropped",
                 "rss_mb_start", "rss_mb_end"):
        assert name in figures, name
    spans = figures["spans_ms_p50"]
    assert all(spans[k] >= 0 for k in ("decode", "vision", "interface", "postprocess", "queue"))
    # The model called directly on the same frames and instructions, and the ratio of the two.
    model_only = figures["model_only_fps"]
    assert model_only["value"] > 0 and model_only["frames"] > 0
    ratio = figures["e2e_over_model"]["value"]
    assert ratio == pytest.approx(figures["processed_fps"]["value"] / model_only["value"], rel=0.02)  # of rounded figures
    # Per round, a camera phase over the model-only phase after it (a phase with a single answer has no rate).
    rounds = figures["e2e_over_model"]["per_round"]
    assert 1 <= len(rounds) <= 2 and all(r > 0 for r in rounds)
    assert figures["e2e_over_model"]["round_mean"] == pytest.approx(sum(rounds) / len(rounds), abs=1e-3)
    assert "phase_fps" not in processed
    cpu = figures["cpu_cores_model"]  # where the CPU went: every group ran, none beyond the machine
    assert cpu["node_workers"] > 0 and cpu["node_main_thread"] > 0 and cpu["camera_process"] > 0
    # /proc counts in clock ticks, so each thread may be a tick off at either end of the window.
    assert cpu["node_workers"] + cpu["node_main_thread"] + cpu["node_dds"] + cpu["camera_process"] <= cpu["cores"] + 0.25
    cost = figures["frame_ms_vs_one_instruction"]
    assert cost["value"] == pytest.approx(cost["frame_ms_p50"] / cost["one_instruction_ms_p50"], rel=0.05)
