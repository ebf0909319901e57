"""`find-ros tasks | ground | segment | retrieve`: the FIND model from the command line.

Without ``--model`` the default model is used (``find_ros.model.default_model_dir``); when there is
none, a small random placeholder, and every output then says UNTRAINED (a warning on stderr,
``"untrained": true`` and a ``"warning"`` in JSON) — it checks the plumbing, it is not a result.
Timings are per API call; benchmarks/model_latency.py times the stages inside them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
IMAGE_BATCH = 8  # images encoded at once by retrieve and index
TOP_K = 5  # images listed per query by retrieve and search
UNTRAINED_WARNING = "UNTRAINED model (random interface weights): outputs check the plumbing and are not results"


class Timer:
    def __init__(self) -> None:
        self.ms: dict[str, float] = {}
        self._start = time.perf_counter()

    def stage(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.ms[name] = round((now - since) * 1000, 2)
        return now

    def total(self) -> dict[str, float]:
        return {**self.ms, "total": round((time.perf_counter() - self._start) * 1000, 2)}


def load_model(args: argparse.Namespace, timer: Timer):  # noqa: ANN202 - (FindModel, dict)
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from find_ros.model import FindModel, resolve_model_dir

    start = time.perf_counter()
    path = resolve_model_dir(args.model)
    model = FindModel.from_pretrained(path, device=args.device)
    timer.stage("load_model", start)
    info: dict[str, Any] = {"path": str(path), "untrained": model.untrained, "device": str(model.device),
                            "dtype": str(model.dtype).replace("torch.", "")}
    if model.untrained:
        print(f"find-ros {args.command}: WARNING: {UNTRAINED_WARNING}", file=sys.stderr)
    return model, info


def report(args: argparse.Namespace, info: dict[str, Any], payload: dict[str, Any], lines: list[str]) -> None:
    if args.json:
        out = {"model": info, **payload}
        if info["untrained"]:
            out["warning"] = UNTRAINED_WARNING
        print(json.dumps(out))
        return
    if info["untrained"]:
        print(f"[UNTRAINED] {UNTRAINED_WARNING}")
    for line in lines:
        print(line)
    print("timing_ms " + " ".join(f"{k}={v}" for k, v in payload["timing_ms"].items()))


def _overlay(path: str, image: np.ndarray, items: list) -> None:
    from find_ros.image_io import write_rgb
    from find_ros.overlay import draw_overlay

    write_rgb(path, draw_overlay(image, items))


def list_images(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name."""
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def embed_files(model: Any, files: list[Path], batch: int, progress: bool = False) -> Any:
    """Unit-length global embeddings (N, D) of image files, encoded ``batch`` at a time.

    Both retrieval tasks give the same image vector (the image query sees only the image), so one
    index serves caption and interleaved queries."""
    import torch
    from tqdm import tqdm

    from find_ros.image_io import read_rgb

    vectors = []
    starts = range(0, len(files), batch)
    for start in tqdm(starts, desc="encoding images", unit="batch", disable=not progress):
        frames = model.encode_image([read_rgb(f) for f in files[start : start + batch]])
        vectors.append(model.embed_images(frames))
    return torch.cat(vectors)


# ------------------------------------------------------------------------------------------ commands


def run_tasks(args: argparse.Namespace) -> int:
    from find_ros.model import list_prototypes

    protos = list_prototypes()
    if args.json:
        print(json.dumps([{"name": p.name, "description": p.description,
                           "prompts": [{"name": s.name, "source": s.source, "group_by": s.group_by} for s in p.prompts],
                           "queries": [{"name": q.name, "init": q.init, "per_group_of": q.per_group_of,
                                        "outputs": list(q.outputs)} for q in p.queries],
                           "readout": p.readout.kind} for p in protos]))
    else:
        for p in protos:
            print(p.summary())
    return 0


def run_ground(args: argparse.Namespace) -> int:
    import torch

    from find_ros.image_io import read_rgb

    timer = Timer()
    image = read_rgb(args.image)
    crops = [read_rgb(c) for c in args.crop or []]
    model, info = load_model(args, timer)
    with torch.inference_mode():
        t = time.perf_counter()
        frame = model.encode_image(image)
        t = timer.stage("encode_image", t)
        instruction = model.encode_instruction(args.text, crops)
        t = timer.stage("encode_instruction", t)
        result = model.ground(frame, instruction)[0]
        timer.stage("ground", t)
    entities = [e.to_dict() for e in result.entities]
    if args.save_overlay:
        _overlay(args.save_overlay, image, [e for e in result.entities if e.found])  # the entities in view
    payload = {"image": str(args.image), "image_size": list(result.image_size), "instruction": args.text,
               "entities": entities, "timing_ms": timer.total()}
    lines = [f"{e['label']!r}: found={e['found']} confidence={e['confidence']:.3f} score={e['score']:.3f} box={e['box']} "
             f"mask_area={e['mask_area']}" for e in entities]
    report(args, info, payload, lines)
    return 0


def run_segment(args: argparse.Namespace) -> int:
    import torch

    from find_ros.image_io import read_rgb

    # Unset options keep the model's own read-out settings (a converted FIND model has the authors').
    options = {name: value for name, value in (("object_threshold", args.threshold), ("overlap_threshold", args.overlap))
               if value is not None}
    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    if not classes:
        raise ValueError("--classes needs at least one class name, e.g. --classes 'cup,table'")
    stuff = [c.strip() for c in (args.stuff or "").split(",") if c.strip()]
    unknown = sorted(set(stuff) - set(classes))
    if unknown:
        raise ValueError(f"--stuff names classes not in --classes: {', '.join(unknown)}")
    timer = Timer()
    image = read_rgb(args.image)
    model, info = load_model(args, timer)
    with torch.inference_mode():
        t = time.perf_counter()
        frame = model.encode_image(image)
        t = timer.stage("encode_image", t)
        result = model.segment(frame, classes, stuff=stuff, **options)[0]
        timer.stage("segment", t)
    if args.save_overlay:
        from find_ros.overlay import Drawn

        _overlay(args.save_overlay, image, [Drawn(s.label, s.score, result.panoptic == s.id, s.box) for s in result.segments])
    payload = {"image": str(args.image), **result.to_dict(), "timing_ms": timer.total()}
    lines = [f"segment {s.id}: {s.label} score={s.score:.3f} area={s.area} box={s.box}" for s in result.segments]
    lines.append(f"{len(result.segments)} panoptic segments, {len(result.instances)} instances")
    report(args, info, payload, lines)
    return 0


def run_retrieve(args: argparse.Namespace) -> int:
    import torch

    from find_ros.image_io import read_rgb

    folder = Path(args.folder)
    files = list_images(folder)
    if not args.text and not args.instruction:
        raise ValueError("give queries: --text CAPTION (repeatable) and/or --instruction TEXT [--crop PATH ...]")
    if args.crop and not args.instruction:
        raise ValueError("--crop belongs to --instruction")
    timer = Timer()
    crops = [read_rgb(c) for c in args.crop or []]
    model, info = load_model(args, timer)
    queries: list[dict[str, Any]] = []
    with torch.inference_mode():
        t = time.perf_counter()
        images = embed_files(model, files, args.batch)
        t = timer.stage("encode_images", t)
        if args.text:
            sims = model.compare(images, model.embed_captions(args.text)).similarity
            queries += [{"query": q, "kind": "text", "scores": sims[:, i]} for i, q in enumerate(args.text)]
        if args.instruction:
            instruction = model.encode_instruction(args.instruction, crops)
            sims = model.compare(images, model.embed_instructions([instruction])).similarity
            queries.append({"query": args.instruction, "kind": "interleave", "scores": sims[:, 0]})
        timer.stage("queries", t)
    results = []
    for q in queries:
        order = np.argsort(-q["scores"], kind="stable")[: args.top_k]
        results.append({"query": q["query"], "kind": q["kind"],
                        "ranking": [{"image": files[i].name, "score": round(float(q["scores"][i]), 6)} for i in order]})
    payload = {"folder": str(folder), "num_images": len(files), "results": results, "timing_ms": timer.total()}
    lines = []
    for r in results:
        lines.append(f"{r['kind']} query {r['query']!r}:")
        lines += [f"  {hit['score']:.4f}  {hit['image']}" for hit in r["ranking"]]
    report(args, info, payload, lines)
    return 0


def model_options(parser: argparse.ArgumentParser,
                  model_help: str = "model directory (default: the shipped model, else an UNTRAINED placeholder)") -> None:
    """--model, --device and --json: what every model command takes."""
    parser.add_argument("--model", help=model_help)
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def register(subparsers: argparse._SubParsersAction) -> None:
    from find_ros.model.results import SegmentationSettings  # plain data: no torch at start-up

    read_out = SegmentationSettings()
    tasks = subparsers.add_parser("tasks", help="list the registered FIND task prototypes")
    tasks.add_argument("--json", action="store_true", help="print JSON")
    tasks.set_defaults(func=run_tasks)

    ground = subparsers.add_parser("ground", help="interleave grounding: one mask per entity of an instruction")
    ground.add_argument("image", help="RGB image file")
    ground.add_argument("text", help='instruction, e.g. "the mug left of <0>" ([words] marks text entities)')
    ground.add_argument("--crop", action="append", metavar="PATH", help="image of visual entity <k> (in order; repeat)")
    ground.add_argument("--save-overlay", metavar="PATH", help="write the image with masks and boxes drawn")
    model_options(ground)
    ground.set_defaults(func=run_ground)

    segment = subparsers.add_parser("segment", help="generic (panoptic/semantic/instance) segmentation")
    segment.add_argument("image", help="RGB image file")
    segment.add_argument("--classes", required=True, help='comma-separated class names, e.g. "cup,table,floor"')
    segment.add_argument("--stuff", help="comma-separated classes that are stuff (merged per class)")
    segment.add_argument("--threshold", type=float,
                         help=f"minimum class score of a segment (default: the model's, else {read_out.object_threshold})")
    segment.add_argument("--overlap", type=float,
                         help=f"minimum visible fraction of a mask (default: the model's, else {read_out.overlap_threshold})")
    segment.add_argument("--save-overlay", metavar="PATH", help="write the image with segments drawn")
    model_options(segment)
    segment.set_defaults(func=run_segment)

    retrieve = subparsers.add_parser("retrieve", help="rank a folder of images by captions or an interleaved instruction")
    retrieve.add_argument("folder", help="folder of images")
    retrieve.add_argument("--text", action="append", metavar="CAPTION", help="caption query (repeatable)")
    retrieve.add_argument("--instruction", metavar="TEXT", help="interleaved query, e.g. 'a room with <0>'")
    retrieve.add_argument("--crop", action="append", metavar="PATH", help="visual entity <k> of --instruction")
    retrieve.add_argument("--top-k", type=int, default=TOP_K, help=f"images listed per query ({TOP_K})")
    retrieve.add_argument("--batch", type=int, default=IMAGE_BATCH, help=f"images encoded at once ({IMAGE_BATCH})")
    model_options(retrieve)
    retrieve.set_defaults(func=run_retrieve)
