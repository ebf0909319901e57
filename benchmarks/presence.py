"""Presence on walk-throughs the calibration never saw: is each entity in view or not?

    python benchmarks/presence.py [--model DIR] [--seeds 30-34] [--frames 40] [--size 320x240] [--work DIR]

For every object of each seed's walk-through, a text and a crop instruction (as `make demo` builds
them) grounded in every frame with the model's own presence decision (find_ros.model.presence).
One JSON line per instruction kind (text, crop): ``auroc`` of the confidence for frames where the
object is in view against frames without a pixel of it, ``precision`` / ``recall`` of ``found`` at
the model's threshold, and the counts (slivers under find_ros.demo.scoring.PRESENT_MIN_FRACTION of
the frame are left out). Issue 18's targets: AUROC >= 0.9, precision and recall >= 0.85. The
default seeds 30-34 are disjoint from the calibration's (20-24) and from every seed of the tests
and `make demo`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    from training.presence_data import DEFAULT_FRAMES, collect, parse_seeds, presence_figures

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model directory (default: the packaged default model)")
    parser.add_argument("--seeds", default="30-34")
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES)
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT")
    parser.add_argument("--work", default=None, help="where the walk-throughs are rendered (default: a temporary folder)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds)
        width, _, height = args.size.partition("x")
        size = (int(width), int(height))
    except ValueError as error:
        parser.error(str(error))

    import torch

    from find_ros.model import FindModel, resolve_model_dir

    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = resolve_model_dir(args.model)
    model = FindModel.from_pretrained(model_dir, device="cpu").eval()
    with tempfile.TemporaryDirectory() as scratch:
        samples = collect(model, seeds, Path(args.work or scratch), args.frames, size)
    for kind in ("text", "crop"):
        print(json.dumps({"benchmark": "presence", "model": model_dir.name, "seeds": args.seeds, "frames": args.frames,
                          "threshold": model.presence.threshold, "calibrated": model.presence.calibrated,
                          **presence_figures(samples, kind)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
