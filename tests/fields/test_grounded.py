"""Locating by FIND's grounding: masks lifted through the views' surfaces vote; the instruction per query
kind."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def _plane_cloud(views: int):
    """A 40x30 grid of surface points on z = 0 seen head-on by ``views`` identical 20x15 views (one
    view pixel per 2x2 points)."""
    from find_ros.fields.query import FieldCloud

    ys, xs = np.mgrid[0:30, 0:40].astype(np.float32) * 0.01
    points = torch.from_numpy(np.stack([xs.ravel(), ys.ravel(), np.zeros(xs.size, np.float32)], 1))
    surface = torch.from_numpy(np.stack([xs[::2, ::2], ys[::2, ::2], np.zeros((15, 20), np.float32)], -1))
    view_points = torch.full((views, 16, 21, 3), torch.nan)  # padded beyond the views' own 15x20
    view_points[:, :15, :20] = surface
    return FieldCloud(points, torch.zeros_like(points), torch.zeros(len(points), 1, 4), torch.ones(1), 0.01,
                      torch.arange(views), view_points, torch.tensor([[15, 20]] * views))


def test_grounding_votes_lift_masks_and_the_views_that_agree_win() -> None:
    from find_ros.fields.grounded import GroundedView, vote
    from find_ros.fields.locate import locate
    from find_ros.fields.query import VoteSettings

    cloud = _plane_cloud(4)
    left, right = np.zeros((60, 80), bool), np.zeros((60, 80), bool)  # masks at 4x the view size
    left[8:24, 8:24] = True    # points x, y in [0.04, 0.12)
    right[32:48, 56:72] = True  # points x in [0.28, 0.36), y in [0.16, 0.24)
    grounded = [GroundedView(0, 9.0, left), GroundedView(1, 8.0, right), GroundedView(2, 7.5, left),
                GroundedView(3, 1.0, right)]  # the weakest match is left out with views=3
    votes, kept = vote(cloud, grounded, VoteSettings(views=3, radius_voxels=0.5))
    assert [g.view for g in kept] == [0, 1, 2]
    xy = cloud.points.numpy()[:, :2]
    in_left = (xy >= 0.04 - 1e-6).all(1) & (xy < 0.12 - 1e-6).all(1)
    assert np.allclose(votes[in_left & (xy[:, 0] % 0.02 < 1e-6) & (xy[:, 1] % 0.02 < 1e-6)], 2 / 3)
    assert votes.max() == pytest.approx(2 / 3) and set(np.round(np.unique(votes), 4)) == {0.0, round(1 / 3, 4), round(2 / 3, 4)}
    region = locate(cloud.points.numpy().astype(np.float64), votes, np.ones(len(votes)), cloud.voxel, top_fraction=0.01)
    assert (np.abs(region.center[:2] - 0.07) < 0.02).all()  # the two agreeing views' object


def test_grounding_instruction_for_each_query_kind() -> None:
    from find_ros.fields.grounded import instruction_for
    from find_ros.fields.query import Query, VoteSettings

    crop = np.zeros((8, 8, 3), np.uint8)
    assert instruction_for(Query("text", text="the red [cone]")) == ("[the red (cone)]", [])
    assert instruction_for(Query("crop", crops=[crop]))[0] == "<0>"
    assert instruction_for(Query("instruction", text="the mug left of <0>", crops=[crop]))[0] == "the mug left of <0>"
    with pytest.raises(ValueError):
        VoteSettings(views=0)
