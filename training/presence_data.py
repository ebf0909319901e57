"""Presence data: walk-through bags of the synthetic world, a text and a crop instruction for every
object (as the demo builds them), and per (instruction, frame) the model's presence signals next to
the ground truth of whether the object is in view. Shared by the calibration
(``python -m training.calibrate_presence``) and the evaluation (``benchmarks/presence.py``)."""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from find_ros.model.presence import PresenceSignals

DEFAULT_SIZE = (320, 240)   # the demo's frames
DEFAULT_FRAMES = 40


@dataclass(frozen=True)
class PresenceSample:
    seed: int
    frame: int
    kind: str               # "text" | "crop"
    object_id: int
    present: bool
    signals: PresenceSignals
    confidence: float
    found: bool


def parse_seeds(text: str) -> list[int]:
    """``"20-24"`` or ``"20,21,25"`` → seeds; errors name the bad part."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise ValueError(f"--seeds: {part!r} is not a seed or a range such as 20-24")
        seeds.extend(range(int(lo), int(hi or lo) + 1))
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {text!r}: give distinct seeds")
    return seeds


def walkthrough(work: Path, seed: int, frames: int, size: tuple[int, int]) -> Path:
    """The walk-through of ``seed`` under ``work`` (rendered once, reused after)."""
    from find_ros.scenes import make_trajectory

    folder = work / f"walk-seed{seed}-{frames}f-{size[0]}x{size[1]}"
    if not (folder / "ground_truth.json").is_file():
        make_trajectory(folder, frames, seed, size=size, path="walk", storage="sqlite3", force=True, progress=False)
    return folder


def collect(model: Any, seeds: list[int], work: Path, frames: int = DEFAULT_FRAMES,
            size: tuple[int, int] = DEFAULT_SIZE, max_objects: int | None = None) -> list[PresenceSample]:
    """Every instruction of every seed's walk-through grounded in every frame (slivers left out,
    :func:`find_ros.demo.scoring.presence_truth`); ``max_objects``: only the best-seen ones, as
    ``make demo`` names them (None: every object fully seen in some frame)."""
    from find_ros.demo.scene_instructions import object_instructions
    from find_ros.demo.scoring import presence_truth
    from find_ros.image_io import ENTITY_CROP_CONTEXT, read_rgb

    samples = []
    for seed in seeds:
        folder = walkthrough(work, seed, frames, size)
        truth = json.loads((folder / "ground_truth.json").read_text())
        instructions = [(score, model.encode_instruction(text, crops))
                        for score, text, crops in object_instructions(folder, truth, max_objects, ENTITY_CROP_CONTEXT)]
        for frame in truth["frames"]:
            image = model.encode_image(read_rgb(folder / frame["image"]))
            for score, encoded in instructions:
                present = presence_truth(frame, score.object_id, size[0] * size[1])
                if present is None:
                    continue
                entity = model.ground(image, encoded)[0].entities[0]
                samples.append(PresenceSample(seed, frame["index"], score.kind, score.object_id, present,
                                              entity.signals, entity.confidence, entity.found))
    return samples



def presence_figures(samples: list[PresenceSample], kind: str) -> dict[str, Any]:
    """For one instruction kind: AUROC of ``confidence``, precision and recall of ``found``, counts."""
    from find_ros.demo.scoring import presence_figures as figures

    chosen = [s for s in samples if s.kind == kind]
    return figures(kind, [s.confidence for s in chosen], [s.found for s in chosen], [s.present for s in chosen])


def add_walkthrough_arguments(parser: argparse.ArgumentParser, seeds: str) -> None:
    """The options of a command that grounds walk-throughs: --model, --seeds (default ``seeds``),
    --frames, --size, --work, --threads."""
    parser.add_argument("--model", default=None, help="model directory (default: the packaged default model)")
    parser.add_argument("--seeds", default=seeds, help="walk-through seeds, e.g. 20-24 or 20,22")
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES)
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT of the rendered frames")
    parser.add_argument("--work", default=None, help="where the walk-throughs are rendered (default: a temporary folder)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")


def load_and_collect(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[Any, Path, list[PresenceSample]]:
    """The model the options name (on the CPU), its directory, and :func:`collect` of their walk-throughs;
    bad options end the command with the parser's error."""
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
        return model, model_dir, collect(model, seeds, Path(args.work or scratch), args.frames, size)
