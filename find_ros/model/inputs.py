"""What FindModel accepts, checked before any model work, and how an image becomes network input.

Checks raise ValueError naming the input that is wrong. :func:`prepare_images` resizes each image
so that its long side is the model's input size, normalises it with the vision encoder's pixel
statistics, and pads the batch (top-left aligned) to a multiple of the backbone's stride.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

MAX_IMAGE_SIDE = 16384  # larger "images" are almost surely a wrong array, not a photo


def check_image(image: Any, index: int) -> np.ndarray:
    """``image`` if it is an RGB uint8 array (H, W, 3) of a plausible size."""
    where = f"image {index}"
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{where}: expected an RGB uint8 numpy array (H, W, 3), got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"{where}: expected dtype uint8, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{where}: expected shape (H, W, 3), got {image.shape}")
    if min(image.shape[:2]) < 1 or max(image.shape[:2]) > MAX_IMAGE_SIDE:
        raise ValueError(f"{where}: size {image.shape[1]}x{image.shape[0]} outside 1..{MAX_IMAGE_SIDE} pixels")
    return image


def as_image_list(images: Any) -> list[np.ndarray]:
    """One image, a list of them or a (B, H, W, 3) array, as a checked list."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        images = list(images)
    elif isinstance(images, np.ndarray):
        images = [images]
    if not isinstance(images, (list, tuple)) or not images:
        raise ValueError("encode_image needs an RGB uint8 array (H, W, 3), a non-empty list of them, or (B, H, W, 3)")
    return [check_image(img, i) for i, img in enumerate(images)]


def as_sequence(value: Any, what: str) -> list:
    """``value`` as a list, refusing a bare string (a common slip for a list of one)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"{what} must be a list, got {type(value).__name__}")
    return list(value)


@dataclass
class PreparedImages:
    pixels: Tensor  # (B, 3, H, W) normalised, padded network input
    image_sizes: tuple[tuple[int, int], ...]
    resized_sizes: tuple[tuple[int, int], ...]


RESIZE_RULES = ("long_side", "shortest_edge")


def resized_size(height: int, width: int, size: int, rule: str = "long_side", max_side: int = 0) -> tuple[int, int]:
    """The network size of an image: its long side made ``size`` ("long_side"), or its short side
    made ``size`` with the long side at most ``max_side`` when > 0 ("shortest_edge", the authors'
    ResizeShortestEdge: their demo uses 480/640, their grounding evaluation 640/1024)."""
    scale = resize_scale(height, width, size, rule, max_side)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_scale(height: int, width: int, size: int, rule: str = "long_side", max_side: int = 0) -> float:
    if rule == "shortest_edge":
        scale = size / min(height, width)
        if max_side and max(height, width) * scale > max_side:
            scale = max_side / max(height, width)
        return scale
    return size / max(height, width)


def prepare_images(images: list[np.ndarray], long_side: int, divisibility: int, pixel_mean: Sequence[float],
                   pixel_std: Sequence[float], device: torch.device, dtype: torch.dtype, rule: str = "long_side",
                   max_side: int = 0) -> PreparedImages:
    """Resize (:func:`resized_size` with ``long_side`` as the size, antialiased when shrinking),
    normalise and pad ``images``."""
    mean = torch.tensor(pixel_mean, device=device).view(3, 1, 1)
    std = torch.tensor(pixel_std, device=device).view(3, 1, 1)
    sizes, resized, tensors = [], [], []
    for img in images:
        h, w = img.shape[:2]
        rh, rw = resized_size(h, w, long_side, rule, max_side)
        x = torch.from_numpy(np.ascontiguousarray(img)).to(device).permute(2, 0, 1).float().div_(255)
        x = F.interpolate(x[None], size=(rh, rw), mode="bilinear", align_corners=False, antialias=resize_scale(h, w, long_side, rule, max_side) < 1)[0]
        tensors.append((x.clamp_(0, 1) - mean) / std)
        sizes.append((h, w))
        resized.append((rh, rw))
    ph = -(-max(r[0] for r in resized) // divisibility) * divisibility
    pw = -(-max(r[1] for r in resized) // divisibility) * divisibility
    pixels = torch.stack([F.pad(t, (0, pw - t.shape[2], 0, ph - t.shape[1])) for t in tensors]).to(dtype)
    return PreparedImages(pixels, tuple(sizes), tuple(resized))
