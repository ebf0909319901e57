"""Segment embedders: one vector per segment of an image, for finding visual references.

:class:`SegmentEmbedder` is the pluggable interface. Two implementations:

* :class:`FindModelEmbedder` -- the default whenever a trained FIND model is available: FIND's region
  embedding of each segment mask, so references are "similar for the model that trains on them"
  (the paper used SEEM embeddings for the same purpose). A thin adapter; see its docstring.
* :class:`ColorShapeEmbedder` -- no model: colour statistics and shape descriptors computed from the
  image's pixels under the mask. Deterministic; used by the tests and for model-free runs. It finds
  segments that *look* alike (a red round thing matches a red round thing), nothing semantic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .errors import DataEngineError


@runtime_checkable
class SegmentEmbedder(Protocol):
    """``embed(rgb, masks, boxes)`` → (n, dim) float32, one row per segment.

    ``rgb``: (H, W, 3) uint8; ``masks``: (n, H, W) bool; ``boxes``: (n, 4) float ``[x0, y0, w, h]``.
    Rows need not be normalised (retrieval normalises them); they must be finite and deterministic for
    the same inputs, or a resumed run could differ from an uninterrupted one.
    """

    name: str
    dim: int

    def fingerprint(self) -> dict[str, Any]: ...

    def embed(self, rgb: np.ndarray, masks: np.ndarray, boxes: np.ndarray) -> np.ndarray: ...


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


class ColorShapeEmbedder:
    """43-d descriptor from pixels: colour (mean, std, 3x3x3 histogram) and shape (box, Hu moments).

    Blocks, each L2-normalised then weighted, so no block dominates by its size:
    mean+std RGB (6, weight 1), square-rooted joint RGB histogram with 3 bins per channel (27,
    weight 1), box aspect / fill ratio / relative size (3, weight 0.5), log-scaled Hu moments of the
    mask (7, weight 0.5).
    """

    name = "color-shape"
    dim = 43
    _BINS = 3

    def fingerprint(self) -> dict[str, Any]:
        return {"embedder": self.name, "dim": self.dim, "version": 1}

    def embed(self, rgb: np.ndarray, masks: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        import cv2

        h, w = rgb.shape[:2]
        n = len(masks)
        out = np.zeros((n, self.dim), np.float32)
        if n == 0:
            return out
        # Colour statistics of all segments in one pass over the pixels (bincount by segment label)
        # rather than one pass per segment; masks of a panoptic image do not overlap.
        label = np.full((h, w), n, np.int64)
        for i, m in enumerate(masks):
            label[m] = i
        sizes = np.array([np.count_nonzero(m) for m in masks])
        if not np.array_equal(np.bincount(label.ravel(), minlength=n + 1)[:n], sizes):
            raise ValueError("segment masks overlap; give one mask per pixel")
        lab = label.ravel()
        px = rgb.reshape(-1, 3).astype(np.float64) / 255.0
        count = np.maximum(sizes, 1)[:, None]
        total = np.stack([np.bincount(lab, px[:, c], n + 1)[:n] for c in range(3)], 1)
        square = np.stack([np.bincount(lab, px[:, c] ** 2, n + 1)[:n] for c in range(3)], 1)
        mean = total / count
        std = np.sqrt(np.maximum(square / count - mean**2, 0.0))
        q = np.minimum((px * self._BINS).astype(np.int64), self._BINS - 1)
        code = q[:, 0] * self._BINS**2 + q[:, 1] * self._BINS + q[:, 2]
        hist = np.bincount(lab * self._BINS**3 + code, minlength=(n + 1) * self._BINS**3)
        hist = np.sqrt(hist[: n * self._BINS**3].reshape(n, -1) / count)
        for i, mask in enumerate(masks):
            if sizes[i] == 0:
                continue
            rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
            y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
            bw, bh = x1 - x0, y1 - y0
            box = np.array([np.clip(np.log(bw / bh), -2, 2) / 2, sizes[i] / (bw * bh), np.sqrt(sizes[i] / (h * w))])
            crop = np.ascontiguousarray(mask[y0:y1, x0:x1], dtype=np.uint8)
            hu = cv2.HuMoments(cv2.moments(crop, binaryImage=True)).ravel()
            hu = np.clip(-np.sign(hu) * np.log10(np.abs(hu) + 1e-30), -30, 30) / 30
            colour = np.concatenate([mean[i], std[i]])
            out[i] = np.concatenate([_unit(colour), _unit(hist[i]), 0.5 * _unit(box), 0.5 * _unit(hu)])
        return out


class FindModelEmbedder:
    """FIND region embeddings of each segment: the intended default embedder.

    A thin adapter over ``find_ros.model``: ``FindModel.from_pretrained(dir)``, ``encode_image(rgb)``
    and ``pool_segments(image, masks)``, which gives each mask the same region embedding a visual
    entity gets inside FIND, so a reference is "alike" for the model that trains on the references.
    ``model_dir=None`` means the model package's default (``$FIND_ROS_MODEL`` or the shipped model).
    An untrained model (random interface) gives meaningless references, so it is refused unless
    ``allow_untrained`` (tests). Imported lazily: the engine and its tests run without torch models.
    """

    name = "find-model"

    def __init__(
        self, model_dir: str | Path | None = None, device: str = "cpu", *, allow_untrained: bool = False
    ) -> None:
        try:
            from find_ros.model import FindModel, resolve_model_dir  # lazy: torch + encoders only when asked
        except ImportError as e:
            raise DataEngineError(
                f"--embedder find needs find_ros.model, which does not import here ({e}); "
                "use --embedder color for a model-free run"
            ) from e
        path = resolve_model_dir(model_dir)
        model = FindModel.from_pretrained(path, device=device)
        if model.untrained and not allow_untrained:
            raise DataEngineError(
                f"FIND model at {path} is untrained: its segment embeddings would give meaningless "
                "references. Give a trained model with --find-model, or use --embedder color."
            )
        self.model = model.eval()
        self.model_dir = Path(path)
        self.dim = int(model.embed_dim)

    def fingerprint(self) -> dict[str, Any]:
        import hashlib

        h = hashlib.sha256()
        for f in sorted(self.model_dir.glob("*.safetensors")) + sorted(self.model_dir.glob("*.json")):
            h.update(f.name.encode() + f.read_bytes())
        return {"embedder": self.name, "dim": self.dim, "model": h.hexdigest()}

    def embed(self, rgb: np.ndarray, masks: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        if len(masks) == 0:
            return np.zeros((0, self.dim), np.float32)
        frame = self.model.encode_image(rgb)
        vecs = self.model.pool_segments(frame, masks)
        return vecs.detach().float().cpu().numpy()


def make_embedder(kind: str, model_dir: str | Path | None = None, device: str = "cpu") -> SegmentEmbedder:
    """``color``, ``find``, or ``auto``: FIND when a model is named or a trained default exists,
    otherwise colour/shape (and the log says which was used)."""
    if kind == "color":
        return ColorShapeEmbedder()
    if kind == "find":
        return FindModelEmbedder(model_dir, device)
    if kind == "auto":
        if model_dir is not None:
            return FindModelEmbedder(model_dir, device)
        try:
            from find_ros.model import default_model_dir
        except ImportError:
            return ColorShapeEmbedder()
        return FindModelEmbedder(None, device) if default_model_dir() is not None else ColorShapeEmbedder()
    raise ValueError(f"unknown embedder {kind!r} (expected auto, find or color)")
