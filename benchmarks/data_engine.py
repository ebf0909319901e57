"""Throughput of the FIND-Bench data engine on this machine.

    python benchmarks/data_engine.py --json            # one JSON object per line, one figure each

Figures:

* ``offline_images_per_s``: the offline backend end to end (load inputs, compose + validate captions,
  durable work records, assembly, atomic output) on a toy COCO-panoptic dataset, no references.
* ``offline_references_images_per_s``: the same with visual references: per image, decode the JPEG
  and the panoptic PNG at 640x480, colour/shape embeddings, then the reference search.
* ``reference_search``: nearest segment in another image for ``n`` gallery segments of dimension
  ``--dim`` (512, FIND's embedding width), ~8 segments per image, embeddings drawn around 80 category
  centres (like real segment embeddings, they cluster). ``exact`` (chunked numpy matmul), faiss
  ``IndexFlatIP`` and faiss ``IndexIVFFlat`` (nlist ~sqrt(n), nprobe ``--nprobe``), each timed
  end to end (index build, IVF training, search, filtering). Queries are
  all segments at 10k; at 100k a random ``--query-fraction`` of them (the exact search is O(n²·d));
  ``queries_per_s`` is what scales, ``full_s`` extrapolates to all n queries. ``recall`` is the
  fraction of queries whose match equals the exact one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training.data_engine import retrieval  # noqa: E402
from training.data_engine.embedders import ColorShapeEmbedder  # noqa: E402
from training.data_engine.engine import EngineConfig, run  # noqa: E402
from training.data_engine.offline import OfflineBackend  # noqa: E402
from training.data_engine.toy import write_toy_dataset  # noqa: E402


def emit(obj: dict, as_json: bool) -> None:
    # The machine is shared: the 1-minute load average says how much to trust a figure.
    obj = {**obj, "load_avg_1m": round(os.getloadavg()[0], 2)}
    print(json.dumps(obj) if as_json else "  ".join(f"{k}={v}" for k, v in obj.items()), flush=True)


def bench_offline(n_images: int, references: bool, width: int, height: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        toy = write_toy_dataset(Path(tmp) / "toy", n_images, width=width, height=height, seed=1)
        cfg = EngineConfig(toy.panoptic_json, toy.images_dir, Path(tmp) / "out" / "bench.json",
                           panoptic_dir=toy.panoptic_dir, captions_json=toy.captions_json,
                           descriptions_json=toy.descriptions_json, references=references, progress=False)
        t0 = time.perf_counter()
        summary = run(cfg, OfflineBackend(), ColorShapeEmbedder() if references else None)
        dt = time.perf_counter() - t0
    name = "offline_references_images_per_s" if references else "offline_images_per_s"
    return {"figure": name, "value": round(n_images / dt, 1), "unit": "images/s", "images": n_images,
            "image_size": f"{width}x{height}", "captions": summary.stats["captions"],
            "entities": summary.stats["entities"], "seconds": round(dt, 3)}


def clustered(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(80, dim)).astype(np.float32)
    emb = centres[rng.integers(0, 80, size=n)] + 0.6 * rng.normal(size=(n, dim)).astype(np.float32)
    image_of = np.repeat(np.arange(n // 8 + 1), 8)[:n]
    return emb, image_of


def timed_search(emb, image_of, queries, index: str, nprobe: int) -> tuple[float, list]:
    t0 = time.perf_counter()
    res = retrieval.nearest_in_other_images(emb, image_of, queries, index=index, nprobe=nprobe)
    return time.perf_counter() - t0, res


def bench_search(n: int, dim: int, query_fraction: float, nprobe: int, as_json: bool) -> None:
    emb, image_of = clustered(n, dim)
    rng = np.random.default_rng(1)
    nq = n if query_fraction >= 1 else max(1, int(n * query_fraction))
    queries = np.sort(rng.choice(n, size=nq, replace=False)) if nq < n else np.arange(n)
    dt_exact, exact = timed_search(emb, image_of, queries, "exact", nprobe)
    want = [m.match for m in exact]
    variants = [("exact", dt_exact, exact)]
    saved = retrieval.IVF_MIN
    try:
        retrieval.IVF_MIN = n + 1  # faiss flat
        variants.append(("faiss_flat", *timed_search(emb, image_of, queries, "faiss", nprobe)))
        retrieval.IVF_MIN = 0  # faiss IVF
        variants.append(("faiss_ivf", *timed_search(emb, image_of, queries, "faiss", nprobe)))
    finally:
        retrieval.IVF_MIN = saved
    for name, dt, res in variants:
        recall = float(np.mean([m.match == w for m, w in zip(res, want)]))
        emit({"figure": "reference_search", "method": name, "segments": n, "dim": dim, "queries": nq,
              "seconds": round(dt, 3), "queries_per_s": round(nq / dt, 1), "full_s": round(dt * n / nq, 1),
              "recall": round(recall, 4), **({"nprobe": nprobe} if name == "faiss_ivf" else {})}, as_json)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--images", type=int, default=400)
    p.add_argument("--reference-images", type=int, default=100)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--query-fraction", type=float, default=0.1, help="share of queries above 10k segments")
    p.add_argument("--nprobe", type=int, default=16)
    args = p.parse_args()
    emit(bench_offline(args.images, False, 640, 480), args.json)
    emit(bench_offline(args.reference_images, True, 640, 480), args.json)
    for n in args.sizes:
        bench_search(n, args.dim, 1.0 if n <= 10_000 else args.query_fraction, args.nprobe, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
