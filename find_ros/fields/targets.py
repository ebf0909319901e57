"""The teacher of a whole training set, in memory: every image's teacher embeddings — FIND's dense
map, or its crop pyramid — read from the cache or computed once with FIND and cached, and the
lookup that gives each training ray its target embedding (at its sampled scale, for crops)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from find_ros.fields.cache import TeacherCache, TeacherSettings
from find_ros.fields.pyramid import CropGrid, bilinear_lookup, crop_grids, dense_grid
from find_ros.fields.teacher import FieldEmbedder, as_rgb, model_fingerprint


@dataclass
class TeacherTargets:
    """Per level k (one for the dense map; one per crop scale): ``grids[k]`` (I, NY, NX, D)
    float16, zero-padded; ``sizes[k]`` (I, 2) valid (ny, nx); ``origin[k]`` / ``spacing[k]``
    (I, 2) first cell centre and spacing (y, x). ``crop_heights`` (I, S): cell height in pixels,
    which with a camera's focal length gives the angle a cell spans (the field's scale input)."""

    grids: list[Tensor]
    sizes: list[Tensor]
    origin: list[Tensor]
    spacing: list[Tensor]
    crop_heights: Tensor
    scales: tuple[float, ...]
    fingerprint: str
    computed: int
    reused: int

    @property
    def num_scales(self) -> int:
        return len(self.grids)

    @property
    def dim(self) -> int:
        return int(self.grids[0].shape[-1])

    def to(self, device: torch.device | str) -> TeacherTargets:
        move = lambda ts: [t.to(device) for t in ts]  # noqa: E731
        return TeacherTargets(move(self.grids), move(self.sizes), move(self.origin), move(self.spacing),
                              self.crop_heights.to(device), self.scales, self.fingerprint, self.computed, self.reused)

    def lookup(self, image: Tensor, y: Tensor, x: Tensor, scale_index: Tensor) -> Tensor:
        """Unit target embeddings (N, D) for rays through pixel (y, x) of ``image`` at scale
        ``scale_index`` (all (N,) integer tensors)."""
        out = torch.empty(image.shape[0], self.dim, device=self.grids[0].device)
        for k in range(self.num_scales):
            sel = scale_index == k
            if bool(sel.any()):
                out[sel] = bilinear_lookup(self.grids[k], self.sizes[k], self.origin[k], self.spacing[k],
                                           image[sel], y[sel], x[sel])
        return F.normalize(out, dim=-1)


def build_targets(count: int, image: Callable[[int], np.ndarray], model_dir: str | Path, settings: TeacherSettings,
                  cache: TeacherCache, *, device: str = "auto", batch_size: int = 16,
                  progress: bool = True) -> TeacherTargets:
    """Teacher embeddings of ``count`` images (``image(i)`` returns image i as uint8). FIND is
    loaded only if some image is missing from the cache."""
    from tqdm import tqdm

    from find_ros.model import FindConfig

    if count < 1:
        raise ValueError("no training images to distil")
    fingerprint = model_fingerprint(model_dir)
    input_size = FindConfig.load(Path(model_dir) / "config.json").input_size

    def cells(height: int, width: int) -> list[CropGrid]:
        if settings.kind == "dense":
            return [dense_grid(height, width, input_size)]
        return crop_grids(height, width, settings.scales, settings.overlap)

    embedder: FieldEmbedder | None = None
    per_image: list[list[Tensor]] = []
    geometry = []
    entries = set()
    computed = reused = 0
    for i in tqdm(range(count), desc="FIND teacher", unit="image", disable=not progress):
        rgb = as_rgb(image(i))
        grids = cells(rgb.shape[0], rgb.shape[1])
        path = cache.entry(fingerprint, settings, rgb)
        entries.add(path)
        dim = per_image[0][0].shape[-1] if per_image else None
        embeddings = cache.read(path, [(g.ny, g.nx) for g in grids], dim)
        if embeddings is None:
            if embedder is None:
                embedder = FieldEmbedder.load(model_dir, device=device, batch_size=batch_size, kind=settings.kind)
            embeddings = [e.to(torch.float16) for e in embedder.teach(rgb, grids)]
            cache.write(path, embeddings)
            computed += 1
        else:
            reused += 1
        per_image.append(embeddings)
        geometry.append(grids)
    cache.prune(entries)

    dim = per_image[0][0].shape[-1]
    grids_out, sizes, origin, spacing = [], [], [], []
    for k in range(len(geometry[0])):
        ny = max(g[k].ny for g in geometry)
        nx = max(g[k].nx for g in geometry)
        padded = torch.zeros(count, ny, nx, dim, dtype=torch.float16)
        for i, emb in enumerate(per_image):
            padded[i, : emb[k].shape[0], : emb[k].shape[1]] = emb[k]
        grids_out.append(padded)
        sizes.append(torch.tensor([[g[k].ny, g[k].nx] for g in geometry], dtype=torch.long))
        origin.append(torch.tensor([[g[k].y0, g[k].x0] for g in geometry], dtype=torch.float32))
        spacing.append(torch.tensor([[g[k].dy, g[k].dx] for g in geometry], dtype=torch.float32))
    crop_heights = torch.tensor([[float(g.crop_h) for g in grids] for grids in geometry], dtype=torch.float32)
    return TeacherTargets(grids_out, sizes, origin, spacing, crop_heights, tuple(g.scale for g in geometry[0]),
                          fingerprint, computed, reused)
