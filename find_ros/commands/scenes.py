"""`find-ros scenes ...`: the synthetic world with ground truth in real formats.

* ``scenes make``        single views of random scenes as COCO / RefCOCO / FIND-Bench files
* ``scenes trajectory``  a camera path through one scene as a rosbag2 + nerfstudio dataset
* ``scenes sheet``       a contact-sheet PNG of rendered views, masks and grounded captions
"""

from __future__ import annotations

import argparse
import json


def _size(text: str) -> tuple[int, int]:
    from find_ros.scenes.camera import parse_size

    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _at_least(minimum: int):  # noqa: ANN202 - an argparse type
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def run_make(args: argparse.Namespace) -> int:
    from find_ros.scenes import make_dataset

    manifest = make_dataset(args.out, args.images, args.seed, splits=args.splits.split(","), size=args.size,
                            force=args.force, progress=not args.quiet, workers=args.workers)
    counts = ", ".join(f"{name}: {split['images']}" for name, split in manifest["splits"].items())
    print(f"wrote {counts} images to {args.out}")
    return 0


def run_trajectory(args: argparse.Namespace) -> int:
    from find_ros.scenes import make_trajectory

    gt = make_trajectory(args.out, args.frames, args.seed, size=args.size, path=args.path, fps=args.fps,
                         storage=args.storage, force=args.force, progress=not args.quiet)
    names = ", ".join(o["expressions"][0] if o["expressions"] else o["name"] for o in gt["objects"])
    print(f"wrote {gt['frame_count']} frames to {args.out}/rosbag and {args.out}/nerfstudio; objects: {names}")
    return 0


def run_sheet(args: argparse.Namespace) -> int:
    from find_ros.scenes.sheet import write_contact_sheet

    path = write_contact_sheet(args.out, seed=args.seed, views=args.views, size=args.size)
    print(json.dumps({"sheet": str(path)}))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("scenes", help="render the synthetic world with ground truth in real formats")
    sub = parser.add_subparsers(dest="scenes_command", metavar="SUBCOMMAND", required=True)

    make = sub.add_parser("make", help="COCO panoptic/instances/captions, RefCOCO refs and FIND-Bench entities")
    make.add_argument("--out", required=True, help="output directory (must be empty or new)")
    make.add_argument("--images", type=_at_least(1), required=True, help="images per split")
    make.add_argument("--seed", type=_seed, required=True, help="random seed; the same seed gives identical files")
    make.add_argument("--splits", default="train", help="comma-separated split names (default: train)")
    make.add_argument("--size", type=_size, default=(320, 240), metavar="WxH", help="image size (default 320x240)")
    make.add_argument("--workers", type=_at_least(1), default=1,
                      help="render in this many processes (same files whatever the number; default 1)")
    make.add_argument("--force", action="store_true", help="replace a non-empty output directory")
    make.add_argument("--quiet", action="store_true", help="no progress bar")
    make.set_defaults(func=run_make)

    traj = sub.add_parser("trajectory", help="a camera path through one scene: rosbag2 + nerfstudio dataset + 3D ground truth")
    traj.add_argument("--out", required=True, help="output directory (must be empty or new)")
    traj.add_argument("--frames", type=_at_least(2), required=True, help="number of frames (at least 2)")
    traj.add_argument("--seed", type=_seed, required=True, help="random seed; the same seed gives identical files")
    traj.add_argument("--size", type=_size, default=(320, 240), metavar="WxH", help="image size (default 320x240)")
    traj.add_argument("--path", choices=("walk", "orbit"), default="walk", help="walk-through (default) or orbit")
    traj.add_argument("--fps", type=float, default=10.0, help="frame rate of the bag's stamps (default 10)")
    traj.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="rosbag2 storage (default mcap)")
    traj.add_argument("--force", action="store_true", help="replace a non-empty output directory")
    traj.add_argument("--quiet", action="store_true", help="no progress bar")
    traj.set_defaults(func=run_trajectory)

    sheet = sub.add_parser("sheet", help="contact sheet PNG of rendered views, masks and grounded captions")
    sheet.add_argument("--out", default="docs/synthetic_world.png", help="PNG path (default docs/synthetic_world.png)")
    sheet.add_argument("--seed", type=_seed, default=0)
    sheet.add_argument("--views", type=_at_least(1), default=6)
    sheet.add_argument("--size", type=_size, default=(320, 240), metavar="WxH")
    sheet.set_defaults(func=run_sheet)
