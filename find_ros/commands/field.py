"""`find-ros field query`: ask a trained find-field (`ns-train find-field`) where something is.

    find-ros field query --config outputs/.../config.yml --text "the red cone" --out cloud.ply
    find-ros field query --config ... --crop mug.png
    find-ros field query --config ... --instruction "the object next to <0>" --crop mug.png

Prints the centre and axis-aligned box of the best-matching region (in the dataset's world frame
when the run has its dataparser transform; the output names the frame) and writes the run's point
cloud coloured by relevancy. The point cloud of a checkpoint is rendered once and cached in the run
directory; later queries on it take milliseconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    # The settings' own defaults (their module imports no torch or nerfstudio: --help stays fast).
    from find_ros.fields.query import LOCATE_METHODS, CloudSettings, LocateSettings

    cloud, locate = CloudSettings(), LocateSettings()
    parser = subparsers.add_parser("field", help="query a 3D FIND feature field trained with `ns-train find-field`")
    sub = parser.add_subparsers(dest="field_command", metavar="SUBCOMMAND", required=True)
    query = sub.add_parser("query", help="locate a text, image-crop or interleaved query in the field's scene")
    query.add_argument("--config", required=True,
                       help="the run's config.yml (outputs/.../find-field/TIMESTAMP/config.yml)")
    query.add_argument("--text", help="text query, e.g. 'the red cone'")
    query.add_argument("--crop", action="append", default=[], metavar="PATH",
                       help="image crop: alone, a visual query; with --instruction, its <0>, <1>, ... (repeatable)")
    query.add_argument("--instruction", help="interleaved instruction with <k> placeholders for the crops")
    query.add_argument("--out", metavar="PLY", help="write the point cloud coloured by relevancy here (.ply)")
    query.add_argument("--json", action="store_true", help="print one JSON object")
    query.add_argument("--find-model", metavar="DIR",
                       help="the FIND model the field was trained with (default: found by its fingerprint)")
    query.add_argument("--data", metavar="DIR", help="the run's dataset, if it moved since training")
    query.add_argument("--views", type=_positive_int, default=cloud.views,
                       help=f"training views rendered for the cloud ({cloud.views})")
    query.add_argument("--max-side", type=_positive_int, default=cloud.max_side,
                       help=f"long side of those renderings, px ({cloud.max_side})")
    query.add_argument("--top-fraction", type=float, default=locate.top_fraction,
                       help=f"fraction of most relevant points clustered into the answer ({locate.top_fraction})")
    query.add_argument("--locate", choices=LOCATE_METHODS, default=locate.method,
                       help=f"grounding: FIND grounds the query in the rendered training views and the views that "
                            f"match best vote in 3D; relevancy: the field's embeddings alone ({locate.method})")
    query.add_argument("--device", default="auto", help="auto, cpu or cuda")
    query.add_argument("--rebuild", action="store_true", help="re-render the point cloud even if cached")
    query.set_defaults(func=run_query)


def _print(result: dict[str, Any], untrained: bool) -> None:
    from find_ros.commands.model import UNTRAINED_WARNING

    if untrained:
        print(f"[UNTRAINED] {UNTRAINED_WARNING}")
    q = result["query"]
    how = (f"{len(result['grounded_views'])} grounded views agree {result['score']:.2f}"
           if result["method"] == "grounding" else "by relevancy")
    print(f"best match for {q['kind']} {q['label']!r} ({how}): relevancy {result['relevancy']:.3f}, "
          f"{result['region_points']} of {result['cloud_points']} points")
    fmt = lambda v: "[" + ", ".join(f"{x:.3f}" for x in v) + "]"  # noqa: E731
    print(f"centre {fmt(result['center'])}  frame: {result['frame']} ({result['frame_note']})")
    print(f"box    min {fmt(result['box']['min'])}  max {fmt(result['box']['max'])}")
    if "ply" in result:
        print(f"point cloud: {result['ply']} (coloured by {'grounding votes' if result['method'] == 'grounding' else 'relevancy'})")
    print("timing_ms " + " ".join(f"{k}={v}" for k, v in result["timing_ms"].items()))


def run_query(args: argparse.Namespace) -> int:
    from find_ros.commands.model import UNTRAINED_WARNING, Timer
    from find_ros.fields.loading import load_run
    from find_ros.fields.cloud import cloud_for_run
    from find_ros.fields.locate import answer
    from find_ros.fields.query import CloudSettings, LocateSettings, parse_query
    from find_ros.image_io import read_rgb

    timer = Timer()
    crops = [read_rgb(path) for path in args.crop]
    labels = [args.text or args.instruction or ""] + [f"crop {p}" for p in args.crop]
    query = parse_query(args.text, crops, args.instruction, label=" + ".join(x for x in labels if x))
    settings = CloudSettings(views=args.views, max_side=args.max_side)
    locate = LocateSettings(method=args.locate, top_fraction=args.top_fraction)
    start = time.perf_counter()
    run = load_run(args.config, find_model=args.find_model, data=args.data, device=args.device)
    start = timer.stage("load_run", start)
    cloud, reused = cloud_for_run(run, settings, reuse=not args.rebuild, progress=not args.json)
    start = timer.stage("cloud_cached" if reused else "cloud_render", start)
    embedder = run.model.embedder()  # loads FIND: timed apart from the query itself
    run.model.negative_embeddings()
    start = timer.stage("load_find", start)
    result = answer(run, query, cloud=cloud, out=args.out, settings=locate)
    timer.stage("query", start)
    result["timing_ms"] = timer.total()
    result["cloud_reused"] = reused
    result["find_model"] = {"path": str(run.find_model_dir), "untrained": embedder.untrained}
    if args.json:
        if embedder.untrained:
            result["warning"] = UNTRAINED_WARNING
        print(json.dumps(result))
    else:
        if embedder.untrained:
            print(f"find-ros field: WARNING: {UNTRAINED_WARNING}", file=sys.stderr)
        _print(result, embedder.untrained)
    return 0
