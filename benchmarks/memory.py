"""The localization memory at the scale of a day of driving: 10k, 100k and 1M remembered frames.

    python benchmarks/memory.py --json [--sizes 10000,100000,1000000] [--dim 96] [--queries 300] [--k 32]

For each size, a memory of that capacity is filled one frame at a time (as the localization node
adds keyframes; payloads off) with synthetic unit vectors of the model's width: frames of a few
hundred places, each seen again and again with noise, so that neighbours are meaningful. One JSON line
per figure:

* ``insert_rate``      frames added per second over the whole fill (the switch to faiss included)
* ``query_exact``      top-K latency p50/p95 of the exact scan over every entry (the baseline)
* ``query_memory``     top-K latency p50/p95 of ``search``, the index the memory picked (named), with
                       its recall@K against the exact scan and its speed-up over it in the same run
* ``resident_memory``  resident set size growth for the filled memory (MiB) and bytes per entry
* ``save`` / ``load``  seconds to write the memory to disk and read it back (searchable)

Wall-clock figures of this machine; ratios (speed-up, recall) carry over to others better than the
milliseconds do.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from find_ros.memory import EmbeddingMemory, MemorySettings  # noqa: E402


def resident_mib() -> float:
    """This process's resident set size (Linux /proc), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Frames:
    """Synthetic frame embeddings: a few hundred places, each frame one of them plus noise, as unit
    vectors. Made in small chunks, so that no large temporary sits beside the memory being measured."""

    def __init__(self, dim: int, places: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.centres = self.rng.normal(size=(places, dim)).astype(np.float32)

    def take(self, n: int) -> np.ndarray:
        v = self.centres[self.rng.integers(0, len(self.centres), n)] + 0.6 * self.rng.normal(size=(n, self.centres.shape[1]))
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def percentiles(samples_ms: list[float]) -> dict:
    ordered = sorted(samples_ms)
    return {"p50_ms": round(statistics.median(ordered), 3),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3)}


def measure(size: int, dim: int, queries: int, k: int, seed: int) -> list[dict]:
    base = {"benchmark": "memory", "entries": size, "dim": dim, "k": k}
    source = Frames(dim, places=max(50, size // 2000), seed=seed)
    probes = source.take(queries)  # the same places, frames the memory never saw
    rss_before = resident_mib()
    memory = EmbeddingMemory(MemorySettings(dim=dim, capacity=size, max_payload_bytes=0))
    fill_s = 0.0
    for start in range(0, size, 1000):
        chunk = source.take(min(1000, size - start))
        t0 = time.perf_counter()
        for i, vector in enumerate(chunk, start=start):  # one at a time, as the node adds keyframes
            memory.add(vector, stamp_ns=i * 33_000_000)
        fill_s += time.perf_counter() - t0
    rss_after = resident_mib()
    lines = [dict(base, figure="insert_rate", frames_per_s=round(size / fill_s, 1), fill_s=round(fill_s, 2),
                  index=memory.index_kind)]

    exact_ms, picked_ms, recall = [], [], []
    for query in probes:
        t0 = time.perf_counter()
        exact = memory.search_exact(query, k)
        t1 = time.perf_counter()
        picked = memory.search(query, k)
        t2 = time.perf_counter()
        exact_ms.append((t1 - t0) * 1000)
        picked_ms.append((t2 - t1) * 1000)
        recall.append(len({m.entry_id for m in exact} & {m.entry_id for m in picked}) / len(exact))
    exact_p, picked_p = percentiles(exact_ms), percentiles(picked_ms)
    lines.append(dict(base, figure="query_exact", index="exact", **exact_p))
    lines.append(dict(base, figure="query_memory", index=memory.index_kind, **picked_p,
                      recall_at_k=round(float(np.mean(recall)), 4),
                      speedup_p50_vs_exact=round(exact_p["p50_ms"] / max(picked_p["p50_ms"], 1e-6), 2)))
    lines.append(dict(base, figure="resident_memory", rss_growth_mib=round(rss_after - rss_before, 1),
                      bytes_per_entry=round((rss_after - rss_before) * 1024 * 1024 / size, 1),
                      embeddings_mib=round(size * dim * 4 / 1024 / 1024, 1)))

    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        memory.save(Path(folder) / "memory")
        t1 = time.perf_counter()
        loaded = EmbeddingMemory.load(Path(folder) / "memory")
        t2 = time.perf_counter()
        same = [m.entry_id for m in loaded.search_exact(probes[0], k)] == [m.entry_id for m in memory.search_exact(probes[0], k)]
        lines.append(dict(base, figure="save", seconds=round(t1 - t0, 3)))
        lines.append(dict(base, figure="load", seconds=round(t2 - t1, 3), index=loaded.index_kind,
                          same_answers=same))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated entry counts")
    parser.add_argument("--dim", type=int, default=96, help="embedding width (the default model's is 96; FIND-T's 512)")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=32, help="top-K (the localization re-rank's shortlist is 32)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="one JSON line per figure (the default output too)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if len(sizes) > 1:
        # One process per size: each resident-memory figure starts from a clean heap.
        for size in sizes:
            subprocess.run([sys.executable, __file__, "--sizes", str(size), "--dim", str(args.dim), "--queries",
                            str(args.queries), "--k", str(args.k), "--seed", str(args.seed)], check=True)
        return 0
    for line in measure(sizes[0], args.dim, args.queries, args.k, args.seed):
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
