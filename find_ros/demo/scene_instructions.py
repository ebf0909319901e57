"""The demo's inputs: a rendered walk-through of the synthetic world, and a text and a crop
instruction for each of its best-seen objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from find_ros.demo.scoring import InstructionScore


def trajectory(out: Path, frames: int, seed: int, size: tuple[int, int]) -> Path:
    """The walk-through (rosbag2 + ground truth) under ``out``, rendered once."""
    from find_ros.scenes import make_trajectory

    folder = out / "trajectory"
    if not (folder / "ground_truth.json").is_file():
        make_trajectory(folder, frames, seed, size=size, path="walk", storage="sqlite3")
    return folder


def object_instructions(folder: Path, truth: dict[str, Any], max_objects: int | None,
                        crop_context: float) -> list[tuple[InstructionScore, str, list[Any]]]:
    """A text and a crop instruction (score record, text, crops) for each of the ``max_objects``
    best-seen objects (None: every object fully visible in some frame), the crop cut around the
    object in the frame that shows it largest."""
    from find_ros.image_io import crop_around, read_rgb

    def best_view(object_id: int) -> tuple[dict[str, Any], dict[str, Any]] | None:
        views = [(f, v) for f in truth["frames"] for v in f["visible"] if v["id"] == object_id and v.get("visible_fraction", 0) >= 0.99]
        return max(views, key=lambda fv: fv[1]["area"], default=None)

    seen = [(o, best_view(o["id"])) for o in truth["objects"]]
    seen = sorted([(o, bv) for o, bv in seen if bv is not None], key=lambda item: -item[1][1]["area"])[:max_objects]
    out = []
    for obj, (frame, view) in seen:
        text = f"[{obj['expressions'][0]}]"
        out.append((InstructionScore(f"text-{obj['id']}", "text", text, obj["id"], obj["name"]), text, []))
        x, y, w, h = view["bbox"]
        crop = crop_around(read_rgb(folder / frame["image"]), (x, y, x + w, y + h), crop_context)
        out.append((InstructionScore(f"crop-{obj['id']}", "crop", f"<0> = crop of {obj['name']} from frame {frame['index']}",
                                     obj["id"], obj["name"]), "<0>", [crop]))
    if not out:
        raise RuntimeError("no object is fully visible in any frame of the trajectory; try another --seed")
    return out


def scene_instructions(folder: Path, truth: dict[str, Any], max_objects: int, crop_context: float) -> list[tuple[Any, InstructionScore]]:
    """:func:`object_instructions` as find_ros_msgs/Instruction messages for the perception graph."""
    from find_ros.nodes.instruction_msgs import build_instruction

    return [(build_instruction(text, crops, instruction_id=score.instruction_id, want_grounding=True,
                               want_localization=False), score)
            for score, text, crops in object_instructions(folder, truth, max_objects, crop_context)]
