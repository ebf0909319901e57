"""Speed of the synthetic world on this machine.

    python benchmarks/scenes.py --json          # one JSON object per line, one figure each

Figures, at 320x240 and 640x480 (``--sizes``):

* ``render``: images/s of ``render_example``: sample a scene, place the camera, build the ray-casting
  structures, cast primary, shadow and amodal rays, shade, develop with sensor noise, and annotate
  (segments, referring expressions, captions). No files.
* ``make``: images/s of ``make_dataset`` end to end: the above plus JPEG and panoptic PNG encoding,
  RLE masks, interleave references and all six annotation JSONs.
* ``trajectory``: frames/s of ``make_trajectory``: one scene, frames rendered along a walk-through,
  written to the rosbag2 (mcap) and the nerfstudio dataset (PNG colour, depth, instances).

The first image of a process pays for open3d's start-up; one warm-up render runs before timing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from find_ros.scenes import make_dataset, make_trajectory, render_example  # noqa: E402
from find_ros.scenes.camera import parse_size  # noqa: E402


def emit(obj: dict, as_json: bool) -> None:
    print(json.dumps(obj) if as_json else "  ".join(f"{k}={v}" for k, v in obj.items()), flush=True)


class Timer:
    """Wall and CPU time (all threads of this process) of a block. CPU time per image is the
    figure to compare across runs on a shared machine; wall time is what a user waits."""

    def __enter__(self) -> "Timer":
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def figure(name: str, size: tuple[int, int], count: int, timer: Timer, unit: str) -> dict:
    return {"benchmark": f"scenes.{name}", "size": f"{size[0]}x{size[1]}", unit: count,
            "seconds": round(timer.wall, 3), f"{unit}_per_s": round(count / timer.wall, 2),
            f"cpu_s_per_{unit[:-1]}": round(timer.cpu / count, 4), "cpus": os.cpu_count(),
            "load_average_1min": round(os.getloadavg()[0], 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--sizes", default="320x240,640x480", help="comma-separated WxH list")
    parser.add_argument("--images", type=int, default=24, help="images (or frames) per figure at 320x240; "
                        "scaled down by pixel count for larger sizes")
    args = parser.parse_args()
    render_example(0, "warmup", 0, 1, (64, 48))
    for size in (parse_size(s) for s in args.sizes.split(",")):
        count = max(4, int(args.images * 320 * 240 / (size[0] * size[1])))
        with Timer() as timer:
            for index in range(count):
                render_example(1, "bench", index, index + 1, size)
        emit(figure("render", size, count, timer, "images"), args.json)
        with tempfile.TemporaryDirectory() as tmp:
            with Timer() as timer:
                make_dataset(Path(tmp) / "d", count, 2, size=size, progress=False)
            emit(figure("make", size, count, timer, "images"), args.json)
            with Timer() as timer:
                make_trajectory(Path(tmp) / "t", count, 3, size=size, progress=False)
            emit(figure("trajectory", size, count, timer, "frames"), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
