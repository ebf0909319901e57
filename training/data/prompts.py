"""Interactive prompts drawn from ground-truth masks (SEEM/FIND's interactive training): a point
inside the object, its box (jittered), a scribble through it, or the mask itself; sometimes with a
negative point outside it, as a user correcting a click would give."""

from __future__ import annotations

import numpy as np

from find_ros.model import SpatialPrompt

KINDS = ("point", "box", "scribble", "mask")


def _interior(mask: np.ndarray) -> np.ndarray:
    """Pixels (y, x) of the mask away from its border when there are any (a click lands inside)."""
    import cv2

    eroded = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    ys, xs = np.nonzero(eroded if eroded.sum() >= 4 else mask)
    return np.stack([ys, xs], axis=1)


def prompts_for_object(mask: np.ndarray, group: int, rng: np.random.Generator, kinds: tuple[str, ...] = KINDS,
                       negative_prob: float = 0.2) -> list[SpatialPrompt]:
    """Prompts for one object (``mask`` (H, W) bool, non-empty), all in ``group``."""
    if not mask.any():
        raise ValueError("cannot draw a prompt from an empty mask")
    kind = kinds[int(rng.integers(len(kinds)))]
    inside = _interior(mask)
    h, w = mask.shape
    if kind == "point":
        y, x = inside[int(rng.integers(len(inside)))]
        prompts = [SpatialPrompt("point", np.array([x + 0.5, y + 0.5]), group=group)]
    elif kind == "box":
        ys, xs = np.nonzero(mask)
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        jx, jy = 0.1 * (x1 - x0), 0.1 * (y1 - y0)
        box = np.array([x0 + rng.uniform(-jx, jx), y0 + rng.uniform(-jy, jy),
                        x1 + rng.uniform(-jx, jx), y1 + rng.uniform(-jy, jy)])
        box = np.clip(box, 0, [w, h, w, h])
        if box[2] <= box[0] or box[3] <= box[1]:
            box = np.array([x0, y0, x1, y1], dtype=float)
        prompts = [SpatialPrompt("box", box, group=group)]
    elif kind == "scribble":
        count = int(rng.integers(2, 5))
        picks = inside[rng.integers(len(inside), size=count)]
        # Order along a random direction, so the polyline sweeps through the object like a stroke.
        direction = rng.normal(size=2)
        picks = picks[np.argsort(picks @ direction)]
        prompts = [SpatialPrompt("scribble", picks[:, ::-1].astype(float) + 0.5, group=group)]
    else:
        prompts = [SpatialPrompt("mask", mask.copy(), group=group)]
    if rng.random() < negative_prob:
        ys, xs = np.nonzero(~mask)
        if len(ys):
            k = int(rng.integers(len(ys)))
            prompts.append(SpatialPrompt("point", np.array([xs[k] + 0.5, ys[k] + 0.5]), positive=False, group=group))
    return prompts
