"""Overlay pictures: masks, boxes and labels drawn over a frame, for people to look at; with 3D
positions, a cross at each position's pixel labelled with its camera-frame coordinates."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# Distinct, colour-blind-friendly colours (Okabe-Ito), cycled per entity.
PALETTE = np.array(
    [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0), (204, 121, 167)],
    dtype=np.float32,
)


class Drawable(Protocol):
    """Anything with these fields draws: find_ros.model's EntityMask, Drawn."""

    label: str
    score: float
    box: Sequence[int] | None  # x0, y0, x1, y1 (exclusive); None or zero-size: no box drawn
    mask: np.ndarray           # bool (H, W)


@dataclass
class Drawn:
    """A drawable made on the spot (a segment, a scored ground-truth object)."""

    label: str
    score: float
    mask: np.ndarray
    box: Sequence[int] | None = None


@dataclass
class Marker3D:
    """A 3D position to draw: the pixel it projects to and its camera-frame coordinates (metres)."""

    u: float
    v: float
    xyz: Sequence[float]

    @property
    def text(self) -> str:
        return "{:.2f},{:.2f},{:.2f} m".format(*self.xyz)


def draw_overlay(rgb: np.ndarray, entities: Iterable[Drawable], alpha: float = 0.45,
                 markers: Sequence[Marker3D | None] = ()) -> np.ndarray:
    """A copy of ``rgb`` with each entity's mask tinted, its box outlined and its label written;
    ``markers[i]``, when given, is entity i's 3D position."""
    import cv2

    out = rgb.astype(np.float32)
    labelled = []
    for i, entity in enumerate(entities):
        colour = PALETTE[i % len(PALETTE)]
        mask = np.asarray(entity.mask, dtype=bool)
        if mask.shape == out.shape[:2] and mask.any():
            out[mask] = (1 - alpha) * out[mask] + alpha * colour
        labelled.append((entity, tuple(int(c) for c in colour)))
    canvas = np.ascontiguousarray(out.clip(0, 255).astype(np.uint8))
    for entity, colour in labelled:
        if entity.box is None:
            continue
        x0, y0, x1, y1 = (int(v) for v in entity.box)
        if x1 <= x0 or y1 <= y0:
            continue
        cv2.rectangle(canvas, (x0, y0), (x1 - 1, y1 - 1), colour, 2)
        text = f"{entity.label[:40]} {entity.score:.2f}"
        cv2.putText(canvas, text, (x0 + 2, max(y0 - 4, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(canvas, text, (x0 + 2, max(y0 - 4, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
    for marker, (_, colour) in zip(markers, labelled):
        if marker is None:
            continue
        centre = (int(round(marker.u)), int(round(marker.v)))
        cv2.drawMarker(canvas, centre, (0, 0, 0), cv2.MARKER_CROSS, 12, 3)
        cv2.drawMarker(canvas, centre, colour, cv2.MARKER_CROSS, 12, 1)
        origin = (centre[0] + 6, centre[1] + 14)
        cv2.putText(canvas, marker.text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(canvas, marker.text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    return canvas
