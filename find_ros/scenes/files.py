"""Writing outputs byte-for-byte reproducibly: JSON with fixed key order and formatting, images
through OpenCV's deterministic encoders (no timestamps or other metadata in PNG or JPEG)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

JPEG_QUALITY = 95
PNG_COMPRESSION = 3


def write_json(path: Path, data: Any) -> Path:
    """Compact UTF-8 JSON with a final newline; key order is the insertion order of ``data``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    return path


def write_image(path: Path, image: np.ndarray) -> Path:
    """RGB uint8 (H, W, 3) as .jpg or .png, or a one-channel uint8/uint16 (H, W) array as .png."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if image.ndim == 3:
        image = np.ascontiguousarray(image[..., ::-1])  # OpenCV writes BGR
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    elif suffix == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION]
    else:
        raise ValueError(f"{path}: unsupported image suffix {suffix!r} (use .png or .jpg)")
    if not cv2.imwrite(str(path), image, params):
        raise ValueError(f"{path}: could not write image")
    return path


def read_png16(path: Path) -> np.ndarray:
    """A one-channel 16-bit PNG as uint16 (H, W)."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    if image.dtype != np.uint16 or image.ndim != 2:
        raise ValueError(f"{path}: expected a one-channel 16-bit PNG, got {image.dtype} with shape {image.shape}")
    return image
