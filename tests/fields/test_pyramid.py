"""The teacher's crop geometry: crops lie inside and cover the image; lookups interpolate between crop
centres."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from find_ros.fields.pyramid import bilinear_lookup, crop_grids


@pytest.mark.parametrize("size", [(72, 96), (240, 320), (50, 50), (37, 101)])
def test_crops_lie_inside_and_cover_the_image(size: tuple[int, int]) -> None:
    h, w = size
    for grid in crop_grids(h, w, (0.2, 0.35, 0.6, 1.0), 0.5):
        covered = np.zeros((h, w), dtype=bool)
        boxes = grid.boxes()
        assert len(boxes) == grid.count
        for x0, y0, x1, y1 in boxes:
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
            assert (y1 - y0, x1 - x0) == (grid.crop_h, grid.crop_w)
            covered[y0:y1, x0:x1] = True
        assert covered.all(), f"scale {grid.scale} leaves pixels without a crop"


def test_crop_grid_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="not in"):
        crop_grids(72, 96, (0.0,), 0.5)
    with pytest.raises(ValueError, match="overlap"):
        crop_grids(72, 96, (0.5,), 1.0)
    with pytest.raises(ValueError, match="no crop scales"):
        crop_grids(72, 96, (), 0.5)


def _grid_tensors(grid, values: torch.Tensor):
    sizes = torch.tensor([[grid.ny, grid.nx]])
    origin = torch.tensor([[grid.y0, grid.x0]])
    spacing = torch.tensor([[grid.dy, grid.dx]])
    return values[None], sizes, origin, spacing


def test_lookup_is_exact_at_crop_centres_and_linear_between() -> None:
    grid = crop_grids(72, 96, (0.5,), 0.5)[0]
    values = torch.randn(grid.ny, grid.nx, 4)
    grids, sizes, origin, spacing = _grid_tensors(grid, values)
    # Pixel (u, v) has its centre at u + 0.5: pick centres that fall on pixel centres.
    for i in range(grid.ny):
        for j in range(grid.nx):
            cy, cx = grid.y0 + i * grid.dy, grid.x0 + j * grid.dx
            if cy % 1 == 0.5 and cx % 1 == 0.5:
                got = bilinear_lookup(grids, sizes, origin, spacing, torch.tensor([0]), torch.tensor([int(cy)]),
                                      torch.tensor([int(cx)]))
                torch.testing.assert_close(got[0], values[i, j])
    # Far outside the outermost centres: the corner crop's value.
    got = bilinear_lookup(grids, sizes, origin, spacing, torch.tensor([0, 0]), torch.tensor([0, 71]),
                          torch.tensor([0, 95]))
    torch.testing.assert_close(got[0], values[0, 0])
    torch.testing.assert_close(got[1], values[-1, -1])


def test_lookup_interpolates_between_two_crops() -> None:
    values = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])  # one row, two crops, D=2
    grids = values[None]
    sizes = torch.tensor([[1, 2]])
    origin = torch.tensor([[5.0, 10.5]])
    spacing = torch.tensor([[1.0, 10.0]])
    got = bilinear_lookup(grids, sizes, origin, spacing, torch.tensor([0]), torch.tensor([5]), torch.tensor([15]))
    torch.testing.assert_close(got[0], torch.tensor([0.5, 0.5]))
