"""find_ros.image_io.crop_around: how visual-entity crops are cut, alike in training and at run time."""

from __future__ import annotations

import numpy as np
import pytest

from find_ros.image_io import crop_around

IMAGE = np.arange(60 * 80 * 3, dtype=np.int64).reshape(60, 80, 3).astype(np.uint8)


def test_tight_box_is_cut_exactly() -> None:
    crop = crop_around(IMAGE, (10, 20, 30, 26))
    assert crop.shape == (6, 20, 3)
    assert np.array_equal(crop, IMAGE[20:26, 10:30])


def test_context_grows_about_the_centre() -> None:
    crop = crop_around(IMAGE, (30, 20, 40, 30), context=2.0)
    assert crop.shape == (20, 20, 3)
    assert np.array_equal(crop, IMAGE[15:35, 25:45])


def test_a_box_at_the_border_shifts_inside_and_keeps_its_size() -> None:
    crop = crop_around(IMAGE, (0, 0, 10, 10), context=1.6)
    assert crop.shape == (16, 16, 3)
    assert np.array_equal(crop, IMAGE[0:16, 0:16])
    assert crop_around(IMAGE, (70, 50, 80, 60), context=3.0).shape == (30, 30, 3)


def test_min_side_and_image_size_bound_the_crop() -> None:
    assert crop_around(IMAGE, (40, 30, 42, 31), min_side=8).shape == (8, 8, 3)
    assert crop_around(IMAGE, (0, 0, 80, 60), context=4.0).shape == (60, 80, 3)


def test_an_empty_box_is_refused() -> None:
    with pytest.raises(ValueError, match="empty box"):
        crop_around(IMAGE, (10, 10, 10, 20))
