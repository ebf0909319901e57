"""`find-ros demo`: the README's main job (`make demo`): the perception graph on a synthetic walk-through.

See find_ros.demo for what it does. It prints, per instruction, the grounding IoU against
the ground truth and whether localization found a frame showing the object, and writes overlays.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from find_ros.demo import DemoSettings, print_report, run_demo

    width, height = (int(v) for v in args.size.lower().split("x"))
    settings = DemoSettings(out=Path(args.out), model=args.model, frames=args.frames, size=(width, height),
                            seed=args.seed, max_objects=args.objects)
    report = run_demo(settings)
    print_report(report, settings.out)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="the perception graph on a synthetic walk-through, scored against ground truth")
    parser.add_argument("--out", default="demo_output", help="output folder (trajectory, overlays, report.json)")
    parser.add_argument("--model", default="", help="model directory ('' = the default model)")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--objects", type=int, default=4, help="objects named by instructions (text + crop each)")
    parser.set_defaults(func=run)
