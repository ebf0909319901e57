"""Scores of the demo: each grounding against the ground-truth instance mask of its frame (IoU), each
published 3D position against the ground truth (the centroid of the true mask's depth points, and
the object's centre), each localization against the frames that show the object, and what a hit
would be worth by chance."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from math import comb
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class InstructionScore:
    instruction_id: str
    kind: str                  # "text" | "crop"
    text: str
    object_id: int
    object_name: str
    frames_scored: int = 0
    mean_iou: float = 0.0      # over every frame showing the object; 0 where it was not found
    frames_found: int = 0      # of those, the frames where it was found (published with a mask)
    mean_iou_found: float | None = None  # over those
    localization_hit: bool | None = None
    localization_stamps: list[int] = field(default_factory=list)
    # Probability that top_k frames picked at random show the object: what a hit is worth.
    localization_chance: float | None = None
    # One entry per scored frame: its index, the object's visible area (px) and fraction, the IoU,
    # and with a published position its distance (m) to the visible surface and the object's centre.
    per_frame: list[dict[str, float]] = field(default_factory=list)
    # One (confidence, found, present) per frame where the object is clearly in view or absent.
    presence: list[tuple[float, bool, bool]] = field(default_factory=list)
    frames_3d: int = 0                        # scored frames whose result carried a position
    median_surface_error_m: float | None = None
    median_centre_error_m: float | None = None


@dataclass
class DemoReport:
    model: str
    device: str
    frames_played: int
    results_received: int
    mean_iou: float
    mean_iou_found: float | None  # over the frames where the entity was found: the quality of the masks published
    localization_hits: int
    localization_queries: int
    top_k: int                 # frames asked of each localization query
    instructions: list[InstructionScore]
    presence: list[dict[str, Any]] = field(default_factory=list)  # presence_figures per instruction kind
    results_with_position: int = 0             # scored results whose entity carried a 3D position
    median_surface_error_m: float | None = None  # over every such result of every instruction
    median_centre_error_m: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Presence ground truth: an object is in view when at least this share of the frame shows it (64 px
# of 320x240) and absent when no pixel does; slivers in between are left out of presence figures,
# as neither answer is wrong for them.
PRESENT_MIN_FRACTION = 1 / 1200


def presence_truth(frame: dict[str, Any], object_id: int, frame_pixels: int) -> bool | None:
    """True: ``object_id`` is in view in ``frame`` (a ground-truth frame entry); False: not a pixel
    of it is; None: a sliver (fewer than :data:`PRESENT_MIN_FRACTION` of the frame's pixels)."""
    area = next((v["area"] for v in frame["visible"] if v["id"] == object_id), 0)
    if area == 0:
        return False
    return True if area >= PRESENT_MIN_FRACTION * frame_pixels else None


def auroc(scores: list[float], present: list[bool]) -> float | None:
    """Area under the ROC curve of ``scores`` for present against absent (None without both)."""
    if all(present) or not any(present):
        return None
    import torch
    from torchmetrics.functional.classification import binary_auroc

    return float(binary_auroc(torch.tensor(scores, dtype=torch.float64), torch.tensor(present, dtype=torch.long)))


def presence_figures(kind: str, confidences: list[float], found: list[bool], present: list[bool]) -> dict[str, Any]:
    """Presence of one entity kind: AUROC of the confidence (present against absent frames),
    precision and recall of ``found``, and the counts."""
    hits = sum(f and p for f, p in zip(found, present))
    value = auroc(confidences, present)
    return {"kind": kind, "auroc": None if value is None else round(value, 4),
            "precision": round(hits / sum(found), 4) if any(found) else None,
            "recall": round(hits / sum(present), 4) if any(present) else None,
            "present": sum(present), "absent": len(present) - sum(present)}


def instance_mask(folder: Path, frame: dict[str, Any], object_id: int) -> np.ndarray:
    import cv2

    path = folder / frame["image"].replace("/images/", "/instances/")
    ids = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if ids is None:
        raise FileNotFoundError(f"ground-truth instance image missing: {path}")
    return ids == object_id


def true_positions(folder: Path, truth: dict[str, Any], frame: dict[str, Any], object_id: int,
                   target: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Ground truth in the camera's optical frame: the centroid (mean) of the true mask's depth
    points, and the object's centre; None when the true mask has no depth reading."""
    import cv2

    from find_ros.position3d import CameraMatrix, back_project, depth_in_metres
    from find_ros.scenes.camera import to_camera

    k = truth["intrinsics"]
    camera = CameraMatrix(k["fx"], k["fy"], k["cx"], k["cy"], k["width"], k["height"])
    path = folder / frame["image"].replace("/images/", "/depth/")
    millimetres = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if millimetres is None:
        raise FileNotFoundError(f"ground-truth depth image missing: {path}")
    depth = depth_in_metres(millimetres, "16UC1")
    vs, us = np.nonzero(target & np.isfinite(depth))
    if not len(vs):
        return None
    surface = back_project(us, vs, depth[vs, us], camera).mean(axis=0)
    centre_world = next(np.array(o["center"], float) for o in truth["objects"] if o["id"] == object_id)
    centre = to_camera(centre_world[None], np.array(frame["world_from_camera"], float))[0]
    return surface, centre


def score_groundings(folder: Path, truth: dict[str, Any], results: dict[int, list[Any]],
                     scores: dict[str, InstructionScore]) -> tuple[list[float], list[tuple]]:
    """Fill each score's per-frame IoUs, their means (all frames showing the object, and those where
    it was found) and its presence samples; returns every IoU and the (frame, score, mask,
    confidence) tuples the overlays draw."""
    from find_ros.nodes.images import image_msg_to_rgb

    frames_by_stamp = {f["stamp_ns"]: f for f in truth["frames"]}
    ious: dict[str, list[float]] = defaultdict(list)
    found_ious: dict[str, list[float]] = defaultdict(list)
    overlays = []
    for stamp, frame_results in sorted(results.items()):
        frame = frames_by_stamp.get(stamp)
        if frame is None:
            continue
        for result in frame_results:
            score = scores[result.instruction_id]
            present = presence_truth(frame, score.object_id, result.image_height * result.image_width)
            if present is not None and result.entities:
                entity = result.entities[0]
                score.presence.append((float(entity.confidence), bool(entity.found), present))
            view = next((v for v in frame["visible"] if v["id"] == score.object_id and v["area"] > 0), None)
            if view is None or not result.entities:
                continue
            entity = result.entities[0]
            predicted = (image_msg_to_rgb(entity.mask)[..., 0] > 127 if entity.mask.width
                         else np.zeros((result.image_height, result.image_width), bool))
            target = instance_mask(folder, frame, score.object_id)
            union = np.logical_or(predicted, target).sum()
            iou = float(np.logical_and(predicted, target).sum() / union) if union else 0.0
            ious[score.instruction_id].append(iou)
            if entity.found:
                found_ious[score.instruction_id].append(iou)
            row = {"frame": frame["index"], "area": view["area"], "visible_fraction": view.get("visible_fraction", 1.0),
                   "score": round(float(entity.score), 4), "found": bool(entity.found),
                   "confidence": round(float(entity.confidence), 4), "iou": round(iou, 4)}
            known = true_positions(folder, truth, frame, score.object_id, target) if entity.has_position else None
            if known is not None:
                published = np.array([entity.position.x, entity.position.y, entity.position.z])
                row["surface_m"] = round(float(np.linalg.norm(published - known[0])), 4)
                row["centre_m"] = round(float(np.linalg.norm(published - known[1])), 4)
            score.per_frame.append(row)
            overlays.append((frame, score, predicted, entity.confidence))
    for instruction_id, values in ious.items():
        scores[instruction_id].frames_scored = len(values)
        scores[instruction_id].mean_iou = float(np.mean(values))
        found = found_ious[instruction_id]
        scores[instruction_id].frames_found = len(found)
        scores[instruction_id].mean_iou_found = float(np.mean(found)) if found else None
    for score in scores.values():
        surface, centre = position_errors([score])
        score.frames_3d = len(surface)
        score.median_surface_error_m = float(np.median(surface)) if surface else None
        score.median_centre_error_m = float(np.median(centre)) if centre else None
    return [v for values in ious.values() for v in values], overlays


def score_presence(scores: list[InstructionScore]) -> list[dict[str, Any]]:
    """:func:`presence_figures` of each instruction kind over every scored frame."""
    figures = []
    for kind in sorted({s.kind for s in scores}, reverse=True):  # text, crop
        samples = [sample for s in scores if s.kind == kind for sample in s.presence]
        figures.append(presence_figures(kind, [c for c, _, _ in samples], [f for _, f, _ in samples], [p for _, _, p in samples]))
    return figures
def position_errors(scores: list[InstructionScore]) -> tuple[list[float], list[float]]:
    """Every scored frame's distance (m) of the published position to the visible surface, and to the
    object's centre."""
    rows = [row for score in scores for row in score.per_frame if "surface_m" in row]
    return [row["surface_m"] for row in rows], [row["centre_m"] for row in rows]


def score_localization(score: InstructionScore, truth: dict[str, Any], stamps: list[int], top_k: int) -> None:
    """A hit when one of the returned frames shows at least half of the object."""
    score.localization_stamps = stamps
    showing = {f["stamp_ns"] for f in truth["frames"]
               if any(v["id"] == score.object_id and v.get("visible_fraction", 0) >= 0.5 for v in f["visible"])}
    score.localization_hit = any(s in showing for s in stamps)
    score.localization_chance = chance_of_hit(len(truth["frames"]), len(showing), top_k)


def chance_of_hit(frames: int, showing: int, k: int) -> float:
    """P(at least one of k frames drawn without replacement from ``frames`` is among ``showing``)."""
    k = min(k, frames)
    return 1.0 - comb(frames - showing, k) / comb(frames, k) if frames else 0.0
