"""The on-disk cache of teacher embeddings: one safetensors file per (FIND model, crop settings,
image content), so a second training run on the same images — or a run on a dataset that shares
images with an earlier one — reads instead of re-encoding.

Layout: ``ROOT/<model fingerprint[:16]>/<entry key>.safetensors`` holding ``scale_<k>`` tensors
(ny, nx, D) in float16 (embeddings are unit vectors; half precision loses nothing a cosine can
see). Bounded: after a run's entries are written, least-recently-used files (by mtime, refreshed
on every read) are deleted until the cache is under its byte budget; the run's own entries are
never deleted. Files are written atomically (temporary name, then rename), read with safetensors
(no pickle), and a corrupt or mismatched entry is discarded and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

CACHE_FORMAT = "find_ros.fields/teacher/1"
SUFFIX = ".safetensors"


def default_cache_dir() -> Path:
    """$FIND_ROS_CACHE/field_teacher (the package's cache directory, ~/.cache/find_ros by default)."""
    from find_ros.model.tiny import cache_dir

    return cache_dir() / "field_teacher"


@dataclass(frozen=True)
class TeacherSettings:
    """What, besides the model and the image, decides an image's teacher embeddings: the teacher
    kind ("dense" or "crops") and, for crops, their scales and overlap."""

    kind: str
    scales: tuple[float, ...] = ()
    overlap: float = 0.0

    def token(self) -> bytes:
        crops = {"scales": [round(s, 6) for s in self.scales], "overlap": round(self.overlap, 6)}
        return json.dumps({"format": CACHE_FORMAT, "kind": self.kind, **(crops if self.kind == "crops" else {})},
                          sort_keys=True).encode()


class TeacherCache:
    def __init__(self, root: str | Path, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"teacher cache budget must be >= 0 bytes, got {max_bytes}")
        self.root = Path(root)
        self.max_bytes = max_bytes

    def entry(self, fingerprint: str, settings: TeacherSettings, image: np.ndarray) -> Path:
        digest = hashlib.sha256(settings.token())
        digest.update(fingerprint.encode() + b"\0" + str(image.shape).encode() + b"\0")
        digest.update(np.ascontiguousarray(image).tobytes())
        return self.root / fingerprint[:16] / (digest.hexdigest() + SUFFIX)

    def read(self, path: Path, shapes: list[tuple[int, int]], dim: int | None) -> list[Tensor] | None:
        """The entry's grids if it exists and has the expected (ny, nx[, dim]) shapes, else None."""
        if not path.is_file():
            return None
        from safetensors.torch import load_file

        try:
            tensors = load_file(str(path))
            grids = [tensors[f"scale_{k}"] for k in range(len(shapes))]
        except Exception:  # noqa: BLE001 - a truncated or foreign file: recompute it
            path.unlink(missing_ok=True)
            return None
        for grid, (ny, nx) in zip(grids, shapes):
            if grid.dim() != 3 or tuple(grid.shape[:2]) != (ny, nx) or (dim is not None and grid.shape[2] != dim):
                path.unlink(missing_ok=True)
                return None
        os.utime(path)  # recently used: the last to be pruned
        return grids

    def write(self, path: Path, grids: list[Tensor]) -> None:
        from safetensors.torch import save_file

        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {f"scale_{k}": g.detach().to(torch.float16).contiguous().cpu() for k, g in enumerate(grids)}
        handle, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        os.close(handle)
        try:
            save_file(tensors, tmp, metadata={"format": CACHE_FORMAT})
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def prune(self, keep: set[Path]) -> int:
        """Delete least-recently-used entries (never those in ``keep``) until the cache fits its
        budget; returns how many files were deleted."""
        if not self.root.is_dir():
            return 0
        files = []
        for path in self.root.rglob("*" + SUFFIX):
            try:
                stat = path.stat()
            except FileNotFoundError:  # a concurrent run pruned it
                continue
            files.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        deleted = 0
        keep = {p.resolve() for p in keep}
        for _, size, path in sorted(files, key=lambda f: f[0]):
            if total <= self.max_bytes:
                break
            if path.resolve() in keep:
                continue
            path.unlink(missing_ok=True)
            total -= size
            deleted += 1
        return deleted
