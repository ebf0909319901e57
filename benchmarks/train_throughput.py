"""Training throughput: samples (images) per second of ``python -m training.train`` for a config.

    python benchmarks/train_throughput.py --config training/configs/synthetic.yaml --steps 20 --json

Runs the real training loop (data, model, every enabled task, backward, optimizer) for ``--steps``
steps into a temporary output directory, after ``--warmup`` steps that are not timed (cold
encoder caches and first-call kernel set-up), and prints one JSON line per figure. Extra
``--set KEY=VALUE`` overrides go to the config, e.g. ``--set run.device=cuda --set run.amp=fp16``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", action="store_true", help="JSON lines (the default output as well)")
    args = parser.parse_args(argv)

    import torch
    import yaml

    from training.config import load_config
    from training.distributed import init_distributed
    from training.train import train

    overrides = {k: yaml.safe_load(v) for k, _, v in (s.partition("=") for s in args.set)}
    with tempfile.TemporaryDirectory(prefix="find-train-bench-") as tmp:
        results = []
        for steps in (args.warmup, args.warmup + args.steps):
            # Same output directory: the second run resumes after the warm-up steps, so it times
            # exactly ``--steps`` steps (its caches start cold again: their fill is part of a run).
            cfg = load_config(args.config, {**overrides, "run.output_dir": tmp, "schedule.max_steps": steps,
                                            "run.checkpoint_every": 10**9, "run.progress": False})
            start = time.perf_counter()
            results.append((train(cfg, init_distributed(cfg.run.device)), time.perf_counter() - start))
        result, wall = results[-1]
    line = {
        "figure": "train_samples_per_s", "config": args.config, "steps": args.steps,
        "batch_per_process": cfg.run.batch_size, "samples_per_s": round(result.samples_per_s, 3),
        "seconds_per_step": round(result.seconds / max(1, args.steps), 3), "wall_s": round(wall, 1),
        "device": str(result.model.device), "threads": torch.get_num_threads(),
        "tasks": {k: v for k, v in cfg.tasks.items() if v > 0},
    }
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
