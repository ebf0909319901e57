"""COCO panoptic PNGs: segment ids are stored as colours, id = R + 256 G + 256² B."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from find_ros.image_io import read_rgb

from .errors import InputFormatError
from .inputs import ImageItem


def rgb_to_id(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 panoptic colours → (H, W) int64 segment ids."""
    c = rgb.astype(np.int64)
    return c[..., 0] + 256 * c[..., 1] + 256 * 256 * c[..., 2]


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    """(H, W) segment ids → (H, W, 3) uint8 panoptic colours (the inverse of :func:`rgb_to_id`)."""
    ids = np.asarray(ids, dtype=np.int64)
    return np.stack([ids % 256, (ids // 256) % 256, ids // (256 * 256)], axis=-1).astype(np.uint8)


def read_segment_masks(panoptic_dir: Path, item: ImageItem, segment_ids: list[int]) -> np.ndarray:
    """(n, H, W) bool masks of ``segment_ids`` from the image's panoptic PNG.

    A segment listed in ``segments_info`` but absent from the PNG, or a PNG whose size differs from
    the image record, is an input error: a reference to such a segment would point at nothing.
    """
    png = panoptic_dir / item.panoptic_file
    try:
        ids = rgb_to_id(read_rgb(png))
    except (FileNotFoundError, ValueError) as e:
        raise InputFormatError(png, f"image_id {item.image_id}", str(e)) from None
    if ids.shape != (item.height, item.width):
        raise InputFormatError(
            png,
            f"image_id {item.image_id}",
            f"PNG is {ids.shape[1]}x{ids.shape[0]} but the image record says {item.width}x{item.height}",
        )
    masks = np.stack([ids == sid for sid in segment_ids]) if segment_ids else np.zeros((0, *ids.shape), bool)
    empty = [sid for sid, m in zip(segment_ids, masks) if not m.any()]
    if empty:
        raise InputFormatError(png, f"image_id {item.image_id}", f"segment ids {empty} have no pixels in the PNG")
    return masks
