"""The demo's pictures: one overlay per frame with every instruction's mask drawn, and the same as a video."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np


def write_overlays(out: Path, folder: Path, overlays: list[tuple]) -> None:
    """``overlays``: (frame, score, mask, confidence) tuples from scoring.score_groundings."""
    import cv2

    from find_ros.image_io import read_rgb, write_rgb
    from find_ros.model.results import mask_box
    from find_ros.overlay import Drawn, draw_overlay

    by_frame: dict[int, list[tuple]] = defaultdict(list)
    frames = {}
    for frame, score, mask, confidence in overlays:
        by_frame[frame["index"]].append((score, mask, confidence))
        frames[frame["index"]] = frame
    pictures = out / "overlays"
    pictures.mkdir(exist_ok=True)
    video = None
    for index in sorted(by_frame):
        rgb = read_rgb(folder / frames[index]["image"])
        drawn = [Drawn(s.text if s.kind == "text" else f"crop:{s.object_name}", c, m, mask_box(m)) for s, m, c in by_frame[index]]
        picture = draw_overlay(rgb, drawn)
        write_rgb(pictures / f"frame_{index:05d}.png", picture)
        if video is None:
            video = cv2.VideoWriter(str(out / "overlay.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (rgb.shape[1], rgb.shape[0]))
        video.write(np.ascontiguousarray(picture[..., ::-1]))
    if video is not None:
        video.release()
