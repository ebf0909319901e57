"""The overlay's 3D markers: a cross at the position's pixel, labelled with its coordinates."""

from __future__ import annotations

import numpy as np

from find_ros.overlay import Drawn, Marker3D, draw_overlay


def test_a_marker_is_drawn_at_its_pixel_and_none_draws_nothing() -> None:
    rgb = np.zeros((60, 80, 3), np.uint8)
    mask = np.zeros((60, 80), bool)
    entities = [Drawn("a", 0.9, mask), Drawn("b", 0.8, mask)]
    plain = draw_overlay(rgb, entities)
    marked = draw_overlay(rgb, entities, markers=[Marker3D(20.0, 15.0, (0.1, -0.2, 1.5)), None])
    changed = np.argwhere((marked != plain).any(axis=2))
    assert len(changed)
    assert (changed[:, 0].min(), changed[:, 1].min()) >= (15 - 7, 20 - 7)  # the cross and its label, below right
    assert tuple(marked[15, 20]) != (0, 0, 0)  # the cross's centre
    assert Marker3D(0, 0, (0.1, -0.2, 1.5)).text == "0.10,-0.20,1.50 m"
