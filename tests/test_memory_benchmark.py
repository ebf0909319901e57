"""benchmarks/memory.py runs and reports every figure (small sizes here; the 1M run is the note's)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_memory_benchmark_prints_one_json_line_per_figure() -> None:
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "memory.py"), "--sizes", "2000", "--queries", "20",
                          "--dim", "32", "--k", "8"], capture_output=True, text=True, check=True, timeout=300).stdout
    lines = [json.loads(line) for line in out.splitlines()]
    figures = {line["figure"]: line for line in lines}
    assert set(figures) == {"insert_rate", "query_exact", "query_memory", "resident_memory", "save", "load"}
    assert all(line["entries"] == 2000 and line["dim"] == 32 for line in lines)
    assert figures["query_memory"]["recall_at_k"] == 1.0  # exact below the limit: the same answers
    assert figures["load"]["same_answers"] is True
    assert figures["insert_rate"]["frames_per_s"] > 0
