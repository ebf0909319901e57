"""Where a training image's teacher embeddings sit, and the teacher embedding of any pixel
(bilinear between the surrounding cells). Two layouts, both regular grids of cells:

* the **dense** map: FIND's stride-4 grid (its pixel embeddings and proposal masks live on it) over
  the image as FIND resized it — one cell per 4x4 network-input pixels;
* the **crop pyramid** (LERF-style): a crop at scale ``s`` is ``round(s*H) x round(s*W)`` pixels —
  the image's own aspect ratio, so that every crop is a zoomed-in view shaped like the frames the
  FIND model was trained on — and crops of one scale tile the image on a regular grid of centres
  with ``overlap`` (0.5 = half a crop) between neighbours.

Pure geometry and tensor math: no FIND model here (see :mod:`find_ros.fields.teacher`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

MIN_CROP_PIXELS = 8  # below this a crop holds too few pixels for the encoder to see anything


STRIDE = 4  # FIND's pixel embeddings and mask logits: one cell per 4x4 pixels of the network input


@dataclass(frozen=True)
class CropGrid:
    """A grid of teacher cells on one image size: the crops of one scale, or the dense map's cells
    (``scale`` 0). Centres: ``x0 + j*dx`` (j < nx), ``y0 + i*dy`` (i < ny), in pixel units where
    pixel (u, v) covers [u, u+1) x [v, v+1); a cell spans ``crop_h x crop_w`` pixels."""

    scale: float
    crop_h: int
    crop_w: int
    ny: int
    nx: int
    y0: float
    x0: float
    dy: float
    dx: float

    @property
    def count(self) -> int:
        return self.ny * self.nx

    def boxes(self) -> list[tuple[int, int, int, int]]:
        """Integer crop boxes (x0, y0, x1, y1), row-major (the order of the teacher grid)."""
        out = []
        for i in range(self.ny):
            top = int(round(self.y0 + i * self.dy - self.crop_h / 2))
            for j in range(self.nx):
                left = int(round(self.x0 + j * self.dx - self.crop_w / 2))
                out.append((left, top, left + self.crop_w, top + self.crop_h))
        return out


def _axis(length: int, crop: int, overlap: float) -> tuple[int, float, float]:
    """(count, first centre, spacing) of crops of size ``crop`` covering ``length`` pixels."""
    if crop >= length:
        return 1, length / 2.0, 1.0
    stride = crop * (1.0 - overlap)
    count = math.ceil((length - crop) / stride) + 1
    return count, crop / 2.0, (length - crop) / (count - 1)


def crop_grids(height: int, width: int, scales: Sequence[float], overlap: float) -> list[CropGrid]:
    """One :class:`CropGrid` per scale (fractions of the image's height and width, in (0, 1])."""
    if height < 1 or width < 1:
        raise ValueError(f"image size {width}x{height} is empty")
    if not scales:
        raise ValueError("no crop scales given")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"crop overlap must be in [0, 1), got {overlap}")
    grids = []
    for s in scales:
        if not 0.0 < s <= 1.0:
            raise ValueError(f"crop scale {s} is not in (0, 1]: scales are fractions of the image size")
        crop_h = min(height, max(MIN_CROP_PIXELS, round(s * height)))
        crop_w = min(width, max(MIN_CROP_PIXELS, round(s * width)))
        ny, y0, dy = _axis(height, crop_h, overlap)
        nx, x0, dx = _axis(width, crop_w, overlap)
        grids.append(CropGrid(float(s), crop_h, crop_w, ny, nx, y0, x0, dy, dx))
    return grids


def dense_grid(height: int, width: int, input_size: int) -> CropGrid:
    """The cells of FIND's stride-4 map over an image of this size, resized as FindModel resizes
    it (long side to ``input_size``, placed at the top-left of the padded input)."""
    if height < 1 or width < 1:
        raise ValueError(f"image size {width}x{height} is empty")
    scale = input_size / max(height, width)
    rh, rw = max(1, round(height * scale)), max(1, round(width * scale))
    cell_h, cell_w = STRIDE * height / rh, STRIDE * width / rw  # original pixels per cell
    return CropGrid(0.0, max(1, round(cell_h)), max(1, round(cell_w)), math.ceil(rh / STRIDE), math.ceil(rw / STRIDE),
                    cell_h / 2, cell_w / 2, cell_h, cell_w)


def bilinear_lookup(grids: Tensor, sizes: Tensor, origin: Tensor, spacing: Tensor, image: Tensor, y: Tensor,
                    x: Tensor) -> Tensor:
    """Teacher embeddings at pixel centres, interpolated between crop centres.

    ``grids`` (I, NY, NX, D): each image's crop embeddings for one scale, zero-padded to a common
    size; ``sizes`` (I, 2) the valid (ny, nx); ``origin`` / ``spacing`` (I, 2) the first centre and
    the spacing (y, x). ``image``, ``y``, ``x`` (N,) integer pixel indices (row y, column x).
    Pixels outside the outermost centres take the nearest crop's value. Returns (N, D).
    """
    py, px = y.to(origin.dtype) + 0.5, x.to(origin.dtype) + 0.5
    ny, nx = sizes[image, 0], sizes[image, 1]
    fy = ((py - origin[image, 0]) / spacing[image, 0]).clamp(min=0).minimum((ny - 1).to(py.dtype))
    fx = ((px - origin[image, 1]) / spacing[image, 1]).clamp(min=0).minimum((nx - 1).to(px.dtype))
    i0, j0 = fy.floor().long(), fx.floor().long()
    i1, j1 = (i0 + 1).minimum(ny - 1), (j0 + 1).minimum(nx - 1)
    wy, wx = (fy - i0).unsqueeze(-1), (fx - j0).unsqueeze(-1)
    g = grids.float()
    top = g[image, i0, j0] * (1 - wx) + g[image, i0, j1] * wx
    bottom = g[image, i1, j0] * (1 - wx) + g[image, i1, j1] * wx
    return top * (1 - wy) + bottom * wy
