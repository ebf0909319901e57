"""Reading and writing image files as RGB uint8 arrays, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file (png, jpg, ...) as RGB uint8 of shape (H, W, 3)."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: not a readable image")
    return np.ascontiguousarray(bgr[..., ::-1])


def write_rgb(path: str | Path, rgb: np.ndarray) -> Path:
    """Write RGB uint8 (H, W, 3) to ``path``; the format follows the suffix."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1])):
        raise ValueError(f"{path}: could not write image (unsupported suffix?)")
    return path
