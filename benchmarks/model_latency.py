"""Latency of the FIND model, stage by stage, on this machine.

    python benchmarks/model_latency.py --json [--configs default,find-t] [--runs 5] [--device auto]

One JSON line per (config, stage) with the median over ``--runs`` timed runs after one warm-up:

* ``vision_encoding``       ``encode_image``: frozen backbone + trainable neck (once per frame)
* ``instruction_encoding``  ``encode_instruction`` with one image crop (once per instruction)
* ``interface``             the interface layers of interleave grounding (``run_interface``)
* ``heads``                 final projections, stride-4 mask logits, read-out at image size

Configs: ``default`` is the model the CLI uses (the shipped one, else the UNTRAINED placeholder)
at its own input size; ``find-t`` is FIND-T-sized — a random FocalNet-T (lrf) vision backbone,
512-d interface, 8 heads, 9 layers, 100+1 queries, 640 px — with the packaged MiniLM as language
model (the authors use LLaMA-7B, which cannot run on these machines). Weights are random: the
timings are what matters. Each line states resolution, parameter counts, device and dtype.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from find_ros.model import FindModel, resolve_model_dir  # noqa: E402
from find_ros.model.tiny import MINILM, find_t_config, save_focalnet_tiny  # noqa: E402

INSTRUCTION = "the red mug left of <0>"


def _time(fn: Callable[[], object], runs: int, device: torch.device) -> list[float]:
    def once() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return (time.perf_counter() - start) * 1000

    once()  # warm-up (allocations, kernel selection)
    return [once() for _ in range(runs)]


def measure(name: str, model: FindModel, image: np.ndarray, crop: np.ndarray, runs: int) -> list[dict]:
    device = model.device
    counts = model.parameter_counts()
    common = {
        "benchmark": "model_latency", "config": name, "task": "interleave_grounding",
        "image_size": list(image.shape[:2]), "input_size": model.config.input_size,
        "params": {**counts, "total": sum(counts.values())},
        "interface": {"hidden_dim": model.config.hidden_dim, "layers": model.config.num_layers,
                      "queries": model.config.num_queries},
        "vision_model": model.vision_encoder.family, "language_model": model.config.language_model,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dtype": str(model.dtype).replace("torch.", ""), "threads": torch.get_num_threads(),
        "untrained": model.untrained,
    }
    lines = []
    with torch.inference_mode():
        frame = model.encode_image(image)
        instruction = model.encode_instruction(INSTRUCTION, [crop])
        state = model.run_interface("interleave_grounding", frame, interleave=instruction)
        stages = {
            "vision_encoding": lambda: model.encode_image(image),
            "instruction_encoding": lambda: model.encode_instruction(INSTRUCTION, [crop]),
            "interface": lambda: model.run_interface("interleave_grounding", frame, interleave=instruction),
            "heads": lambda: model.readout(model.predict(state)),
        }
        for stage, fn in stages.items():
            ms = _time(fn, runs, device)
            lines.append({**common, "stage": stage, "median_ms": round(statistics.median(ms), 2),
                          "min_ms": round(min(ms), 2), "runs": runs})
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--configs", default="default,find-t", help="comma-separated: default, find-t")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default=None, help="default: bf16/fp16 on GPU, fp32 on CPU")
    parser.add_argument("--size", default="640x480", help="image WxH (default 640x480)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    crop = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    lines: list[dict] = []
    for name in [c.strip() for c in args.configs.split(",") if c.strip()]:
        if name == "default":
            model = FindModel.from_pretrained(resolve_model_dir(), device=args.device, dtype=args.dtype)
            lines += measure(name, model, image, crop, args.runs)
        elif name == "find-t":
            with tempfile.TemporaryDirectory() as tmp:
                save_focalnet_tiny(Path(tmp) / "vision")
                config = find_t_config("vision", MINILM)
                model = FindModel.from_config(config, base_dir=tmp, device=args.device, dtype=args.dtype, seed=0)
                lines += measure(name, model, image, crop, args.runs)
        else:
            raise SystemExit(f"unknown config {name!r}")
        del model
    for line in lines:
        if args.json:
            print(json.dumps(line), flush=True)
        else:
            print(f"{line['config']:8s} {line['stage']:22s} {line['median_ms']:9.2f} ms  "
                  f"({line['device']}, {line['dtype']}, input {line['input_size']} px, "
                  f"{line['params']['total'] / 1e6:.1f} M params)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
