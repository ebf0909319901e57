"""The data engine's pipeline: captions → segment embeddings → references → FIND-Bench JSON.

Stages, each resumable through its own work file in the work directory:

1. ``captions.jsonl``: one record per image (validated captions, rejects, call counts). LLM calls run
   on a thread pool of ``concurrency`` workers with at most ``2 * concurrency`` images in flight, so
   memory stays bounded however large the dataset. Images whose requests failed in transport are not
   recorded: they stay pending, the run ends with an error saying how many, and a re-run retries them.
2. ``embeddings.jsonl`` (only with references): one record per image holding its segments'
   embeddings (float32, base64), so a resumed run never re-encodes an image.
3. Assembly, from the work files alone, in the panoptic JSON's image order: the output never depends
   on completion order or on where a previous run was killed, so it is byte-identical to an
   uninterrupted run's. Outputs (FIND-Bench JSON, stats JSON, rejects JSONL) are written atomically.

The work files carry a fingerprint of the inputs and of every setting that changes their content;
resuming with different ones is refused with the list of differences.
"""

from __future__ import annotations

import base64
import json
import logging
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .backend import CaptionBackend, CaptionResult
from .chat_client import ChatTransientError
from .embedders import SegmentEmbedder
from .errors import DataEngineError, InputFormatError, WorkFileMismatch
from .inputs import Dataset, ImageItem, load_dataset
from .markup import Caption, MarkupError, parse_caption
from .schema import Reference, annotation_dict, parse_find_bench
from .stats import engine_stats, table_stats
from .workfile import WorkFile, atomic_write_bytes

log = logging.getLogger(__name__)


class IncompleteRun(DataEngineError):
    """Some images could not be processed this time (e.g. the service was unreachable); re-run to resume."""


@dataclass
class EngineConfig:
    panoptic_json: Path
    images_dir: Path
    out: Path
    panoptic_dir: Path | None = None
    captions_json: Path | None = None
    descriptions_json: Path | None = None
    work_dir: Path | None = None
    stats_path: Path | None = None
    rejects_path: Path | None = None
    captions_per_image: int = 1
    references: bool = False
    same_category: bool = False
    index: str = "auto"
    limit: int | None = None
    concurrency: int = 4
    progress: bool = True

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.captions_per_image < 1:
            raise DataEngineError("--captions-per-image must be >= 1")
        if self.concurrency < 1:
            raise DataEngineError("--concurrency must be >= 1")
        if self.limit is not None and self.limit < 0:
            raise DataEngineError("--limit must be >= 0")
        if self.index not in ("exact", "faiss", "auto"):
            raise DataEngineError(f"--index must be exact, faiss or auto, got {self.index!r}")

    @property
    def work(self) -> Path:
        return Path(self.work_dir) if self.work_dir else self.out.with_name(self.out.name + ".work")

    @property
    def stats_file(self) -> Path:
        return Path(self.stats_path) if self.stats_path else self.out.with_name(self.out.stem + ".stats.json")

    @property
    def rejects_file(self) -> Path:
        return Path(self.rejects_path) if self.rejects_path else self.out.with_name(self.out.stem + ".rejects.jsonl")


@dataclass
class RunSummary:
    stats: dict[str, Any]
    out: Path
    stats_file: Path
    rejects_file: Path
    failed_images: list[int] = field(default_factory=list)


def _load(cfg: EngineConfig) -> Dataset:
    ds = load_dataset(
        cfg.panoptic_json,
        cfg.images_dir,
        panoptic_dir=cfg.panoptic_dir,
        captions_json=cfg.captions_json,
        descriptions_json=cfg.descriptions_json,
    )
    if cfg.limit is not None:
        ds.images = ds.images[: cfg.limit]
    return ds


def _caption_fingerprint(cfg: EngineConfig, ds: Dataset, backend: CaptionBackend) -> dict[str, Any]:
    return {"stage": "captions", "inputs": ds.input_digest, "captions_per_image": cfg.captions_per_image,
            **backend.fingerprint()}


def _embedding_fingerprint(ds: Dataset, embedder: SegmentEmbedder) -> dict[str, Any]:
    return {"stage": "embeddings", "inputs": ds.input_digest, **embedder.fingerprint()}


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    # disable=None: tqdm draws only on a terminal, so logs and CI output stay clean.
    return tqdm(total=total, desc=desc, unit="img", disable=None if enabled else True, file=sys.stderr)


def _caption_record(item: ImageItem, res: CaptionResult) -> dict[str, Any]:
    status = "ok" if res.ok else ("no_segments" if not item.entity_segments else "rejected")
    return {
        "image_id": item.image_id,
        "status": status,
        "captions": [c.sentence_raw for c in res.captions],
        "rejects": [r.as_dict() for r in res.rejects],
        "llm_calls": res.llm_calls,
        "retry_causes": res.retry_causes,
    }


def _run_captions(
    cfg: EngineConfig, pending: list[ImageItem], backend: CaptionBackend, wf: WorkFile
) -> list[int]:
    """Caption every pending image, appending each finished one to ``wf``; returns transport failures."""
    failed: list[int] = []
    bar = _progress(len(pending), "captions", cfg.progress)

    def finish(item: ImageItem, get: Callable[[], CaptionResult]) -> None:
        try:
            res = get()
        except ChatTransientError as e:
            failed.append(item.image_id)
            log.warning("image %s left pending: %s", item.image_id, e)
        else:
            wf.append(item.image_id, _caption_record(item, res))
        bar.update(1)

    try:
        if not backend.uses_llm or cfg.concurrency == 1:
            for item in pending:
                finish(item, lambda item=item: backend.generate(item, cfg.captions_per_image))
            return failed
        with ThreadPoolExecutor(max_workers=cfg.concurrency, thread_name_prefix="caption") as pool:
            todo = iter(pending)
            inflight: dict[Future, ImageItem] = {}

            def fill() -> None:
                while len(inflight) < 2 * cfg.concurrency:
                    item = next(todo, None)
                    if item is None:
                        return
                    inflight[pool.submit(backend.generate, item, cfg.captions_per_image)] = item

            fill()
            try:
                while inflight:
                    done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                    for fut in done:
                        finish(inflight.pop(fut), fut.result)
                    fill()
            except BaseException:
                for fut in inflight:
                    fut.cancel()
                raise
        return failed
    finally:
        bar.close()


def _embed_image(ds: Dataset, item: ImageItem, embedder: SegmentEmbedder) -> dict[str, Any]:
    from find_ros.image_io import read_rgb

    from .panoptic import read_segment_masks

    segs = item.entity_segments
    path = ds.image_dir / item.file_name
    try:
        rgb = read_rgb(path)
    except (FileNotFoundError, ValueError) as e:
        raise InputFormatError(path, f"image_id {item.image_id}", str(e)) from None
    if rgb.shape[:2] != (item.height, item.width):
        raise InputFormatError(
            path, f"image_id {item.image_id}",
            f"image is {rgb.shape[1]}x{rgb.shape[0]} but the record says {item.width}x{item.height}",
        )
    ids = [s.id for s in segs]
    masks = read_segment_masks(ds.panoptic_dir, item, ids)
    boxes = np.array([s.bbox for s in segs], np.float32).reshape(-1, 4)
    emb = np.asarray(embedder.embed(rgb, masks, boxes), dtype="<f4")
    if emb.shape[0] != len(ids) or (len(ids) and not np.isfinite(emb).all()):
        raise DataEngineError(
            f"embedder {embedder.name} returned shape {emb.shape} for {len(ids)} segments, or non-finite values"
        )
    return {
        "image_id": item.image_id,
        "segment_ids": ids,
        "dim": int(emb.shape[1]) if emb.ndim == 2 else 0,
        "data": base64.b64encode(np.ascontiguousarray(emb).tobytes()).decode("ascii"),
    }


def _decode_embeddings(rec: dict[str, Any]) -> np.ndarray:
    arr = np.frombuffer(base64.b64decode(rec["data"]), dtype="<f4")
    return arr.reshape(len(rec["segment_ids"]), rec["dim"]) if rec["segment_ids"] else arr.reshape(0, 0)


def _references(
    ds: Dataset, emb_records: dict[Any, dict[str, Any]], wanted: dict[int, set[int]], cfg: EngineConfig
) -> dict[int, dict[int, Reference]]:
    """image id → {segment id → reference}, for the segments that captions mention."""
    from .retrieval import nearest_in_other_images

    rows: list[np.ndarray] = []
    image_of: list[int] = []
    seg_of: list[int] = []
    cat_of: list[int] = []
    for item in ds.images:
        rec = emb_records[item.image_id]
        cats = {s.id: s.category_id for s in item.entity_segments}
        if rec["segment_ids"] != [s.id for s in item.entity_segments]:
            raise WorkFileMismatch(f"embedding record of image {item.image_id} does not match its segments")
        if rec["segment_ids"]:
            rows.append(_decode_embeddings(rec))
            image_of += [item.image_id] * len(rec["segment_ids"])
            seg_of += rec["segment_ids"]
            cat_of += [cats[s] for s in rec["segment_ids"]]
    if not rows:
        return {}
    emb = np.concatenate(rows)
    row_of = {(i, s): r for r, (i, s) in enumerate(zip(image_of, seg_of))}
    queries = sorted(row_of[(i, s)] for i, segs in wanted.items() for s in segs)
    matches = nearest_in_other_images(
        emb, np.asarray(image_of), np.asarray(queries, dtype=np.int64),
        category_of=np.asarray(cat_of) if cfg.same_category else None, index=cfg.index,
    )
    out: dict[int, dict[int, Reference]] = {}
    for q, m in zip(queries, matches):
        if m is None:
            continue
        out.setdefault(image_of[q], {})[seg_of[q]] = Reference(
            image_id=image_of[m.match], annotation_id=seg_of[m.match], prob=round(m.prob, 6)
        )
    return out


def _parse_record(item: ImageItem, rec: dict[str, Any]) -> list[Caption]:
    ids = {s.id for s in item.entity_segments}
    try:
        return [parse_caption(raw, ids) for raw in rec["captions"]]
    except MarkupError as e:
        raise WorkFileMismatch(f"work record of image {item.image_id} holds an invalid caption ({e})") from None


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def plan(cfg: EngineConfig, backend: CaptionBackend, embedder: SegmentEmbedder | None = None) -> dict[str, Any]:
    """What a run would do, without touching anything: the ``--dry-run`` report."""
    ds = _load(cfg)
    cap_wf = WorkFile(cfg.work / "captions.jsonl", _caption_fingerprint(cfg, ds, backend))
    done = cap_wf.load()
    pending = [im for im in ds.images if im.image_id not in done]
    with_segments = [im for im in pending if im.entity_segments]
    report: dict[str, Any] = {
        "images": len(ds.images),
        "images_done": len(ds.images) - len(pending),
        "images_pending": len(pending),
        "pending_without_segments": len(pending) - len(with_segments),
        "backend": backend.name,
        "llm_calls": len(with_segments) if backend.uses_llm else 0,
    }
    if backend.uses_llm:
        gens = getattr(backend, "max_generations", 1)
        attempts = getattr(getattr(backend, "client", None), "policy", None)
        report["llm_calls_max"] = len(with_segments) * gens * (attempts.max_attempts if attempts else 1)
    if cfg.references and embedder is not None:
        emb_done = WorkFile(cfg.work / "embeddings.jsonl", _embedding_fingerprint(ds, embedder)).load()
        report["embeddings_pending"] = sum(1 for im in ds.images if im.image_id not in emb_done)
    return report


def run(cfg: EngineConfig, backend: CaptionBackend, embedder: SegmentEmbedder | None = None) -> RunSummary:
    """Run (or resume) the engine and write the outputs; see the module docstring."""
    t0 = time.monotonic()
    if cfg.references and embedder is None:
        raise DataEngineError("references need a segment embedder")
    ds = _load(cfg)
    if cfg.references:  # fail before spending any LLM call on a dataset whose images are missing
        missing = [im.file_name for im in ds.images if not (ds.image_dir / im.file_name).is_file()]
        if missing:
            raise InputFormatError(ds.image_dir, "", f"{len(missing)} image file(s) missing, e.g. {missing[:3]}")

    cap_wf = WorkFile(cfg.work / "captions.jsonl", _caption_fingerprint(cfg, ds, backend))
    done = cap_wf.load()
    pending = [im for im in ds.images if im.image_id not in done]
    log.info("%d images, %d already captioned, %d to do (%s backend)",
             len(ds.images), len(done), len(pending), backend.name)
    with cap_wf:
        failed = _run_captions(cfg, pending, backend, cap_wf)
    done = cap_wf.load()

    emb_done: dict[Any, dict[str, Any]] = {}
    if cfg.references:
        assert embedder is not None
        emb_wf = WorkFile(cfg.work / "embeddings.jsonl", _embedding_fingerprint(ds, embedder))
        emb_done = emb_wf.load()
        todo = [im for im in ds.images if im.image_id not in emb_done]
        bar = _progress(len(todo), "embeddings", cfg.progress)
        with emb_wf:
            for item in todo:
                emb_wf.append(item.image_id, _embed_image(ds, item, embedder))
                bar.update(1)
        bar.close()
        emb_done = emb_wf.load()

    if failed:
        raise IncompleteRun(
            f"{len(failed)} image(s) could not be captioned this time (service unreachable or rate-limited "
            f"beyond the retry budget), e.g. {failed[:5]}; finished work is saved in {cfg.work}, "
            "re-run the same command to resume"
        )

    captions: dict[int, list[Caption]] = {im.image_id: _parse_record(im, done[im.image_id]) for im in ds.images}
    refs: dict[int, dict[int, Reference]] = {}
    if cfg.references:
        wanted = {iid: {p.segment_id for c in caps for p in c.phrases} for iid, caps in captions.items() if caps}
        refs = _references(ds, emb_done, wanted, cfg)

    ordered = [(im.image_id, c) for im in ds.images for c in captions[im.image_id]]
    doc = {
        "images": [im.image_info for im in ds.images if captions[im.image_id]],
        "annotations": [
            annotation_dict(k, iid, c, refs.get(iid) if cfg.references else None)
            for k, (iid, c) in enumerate(ordered, start=1)
        ],
    }
    parse_find_bench(doc, str(cfg.out))  # the reader's own checks, before anything is written

    records = [done[im.image_id] for im in ds.images]
    stats = {
        **table_stats(doc),
        "input_images": len(ds.images),
        **engine_stats(records),
        "backend": backend.name,
        "references": cfg.references,
        "index": cfg.index if cfg.references else None,
        "same_category": cfg.same_category if cfg.references else None,
        "elapsed_s": round(time.monotonic() - t0, 3),
    }
    rejects = [{"image_id": r["image_id"], **x} for r in records for x in r.get("rejects", [])]
    atomic_write_bytes(cfg.out, _dumps(doc))
    atomic_write_bytes(cfg.stats_file, json.dumps(stats, indent=2, ensure_ascii=False).encode() + b"\n")
    atomic_write_bytes(cfg.rejects_file, b"".join(_dumps(r) + b"\n" for r in rejects))
    return RunSummary(stats=stats, out=cfg.out, stats_file=cfg.stats_file, rejects_file=cfg.rejects_file)

