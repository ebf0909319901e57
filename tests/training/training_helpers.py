"""Helpers for the training tests (a module of its own: conftest files are not importable)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def write_config(directory: Path, model: Path, data: Path, output: Path, **run: object) -> Path:
    """A complete training YAML for the tiny model on the synthetic data (every task on)."""
    losses = {t: {"ce": 0.4, "bce": 1.0, "dice": 1.0} for t in
              ("grounded_segmentation", "interactive_segmentation", "interleave_grounding")}
    losses["generic_segmentation"] = {"ce": 2.0, "bce": 5.0, "dice": 5.0, "no_object": 0.1}
    doc = {
        "model": {"init": str(model)},
        "data": {"train": {"dataset": str(data), "split": "train", "find_bench_strict": True}},
        "items": {"reference_prob": 0.5, "crop_prob": 0.5, "single_entity_prob": 0.3, "phrase_crop_prob": 0.5, "max_interactive": 2},
        "tasks": {t: 1.0 for t in ("generic_segmentation", "grounded_segmentation", "interactive_segmentation",
                                   "image_text_retrieval", "interleave_grounding", "interleave_retrieval")},
        "losses": {"num_points": 64, **losses},
        "optim": {"lr": 1e-3},
        "schedule": {"max_steps": 4, "warmup_steps": 1, "milestones": [0.75]},
        "run": {"batch_size": 2, "retrieval_batch_size": 3, "output_dir": str(output), "checkpoint_every": 2, "threads": 1,
                "progress": False, "vision_cache_mb": 32, "language_cache_mb": 8, **run},
    }
    path = directory / "train.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env
