"""Presence on walk-throughs the calibration never saw: is each entity in view or not?

    python benchmarks/presence.py [--model DIR] [--seeds 40-49] [--frames 40] [--size 320x240] [--work DIR]

For every object of each seed's walk-through, a text and a crop instruction (as `make demo` builds
them) grounded in every frame with the model's own presence decision (find_ros.model.presence).
One JSON line per instruction kind (text, crop): ``auroc`` of the confidence for frames where the
object is in view against frames without a pixel of it, ``precision`` / ``recall`` of ``found`` at
the model's threshold, and the counts (slivers under find_ros.demo.scoring.PRESENT_MIN_FRACTION of
the frame are left out). Issue 18's targets: AUROC >= 0.9, precision and recall >= 0.85. The
default seeds 40-49 are disjoint from the calibration's (20-29, 100-129), from every seed of the
tests and `make demo`, and from 30-39, on which earlier calibration recipes were compared.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    from training.presence_data import (
        add_walkthrough_arguments,
        load_and_collect,
        presence_figures,
    )

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_walkthrough_arguments(parser, seeds="40-49")
    args = parser.parse_args(argv)
    model, model_dir, samples = load_and_collect(parser, args)
    for kind in ("text", "crop"):
        print(json.dumps({"benchmark": "presence", "model": model_dir.name, "seeds": args.seeds, "frames": args.frames,
                          "threshold": model.presence.threshold, "calibrated": model.presence.calibrated,
                          **presence_figures(samples, kind)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
