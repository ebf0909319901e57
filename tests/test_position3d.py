"""find_ros.position3d on synthetic depth whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from find_ros.position3d import CameraMatrix, DepthSettings, depth_in_metres, locate

W, H = 160, 120
CAMERA = CameraMatrix(fx=100.0, fy=110.0, cx=(W - 1) / 2, cy=(H - 1) / 2, width=W, height=H)


def rectangle(u0: int, v0: int, u1: int, v1: int) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[v0:v1, u0:u1] = True
    return mask


def test_flat_patch_at_known_place() -> None:
    depth = np.full((H, W), 2.0, np.float32)
    mask = rectangle(100, 20, 121, 41)  # pixel centres u 100..120, v 20..40
    found = locate(mask, depth, CAMERA)
    assert found is not None and found.points == 21 * 21
    expected = np.array([(110 - CAMERA.cx) * 2.0 / 100.0, (30 - CAMERA.cy) * 2.0 / 110.0, 2.0])
    np.testing.assert_allclose(found.position, expected, atol=1e-9)
    assert found.position[0] > 0 and found.position[1] < 0  # right of and above the optical axis
    settings = DepthSettings(box_percentiles=(0.0, 100.0))
    full = locate(mask, depth, CAMERA, settings)
    np.testing.assert_allclose(full.box_min, [(100 - CAMERA.cx) * 0.02, (20 - CAMERA.cy) * 2 / 110, 2.0], atol=1e-9)
    np.testing.assert_allclose(full.box_max, [(120 - CAMERA.cx) * 0.02, (40 - CAMERA.cy) * 2 / 110, 2.0], atol=1e-9)
    u, v = CAMERA.project(found.position)
    assert (u, v) == pytest.approx((110.0, 30.0))


def test_spill_onto_background_and_holes_are_dropped() -> None:
    depth = np.full((H, W), 5.0, np.float32)   # a wall
    depth[40:80, 60:100] = 1.5                 # the object
    mask = rectangle(55, 35, 105, 85)          # the mask spills 5 px onto the wall all round
    mm = np.round(depth * 1000).astype(np.uint16)
    mm[50:55, 70:75] = 0                       # no reading inside the object
    found = locate(mask, depth_in_metres(mm, "16UC1"), CAMERA)
    assert found is not None and found.points == 40 * 40 - 25
    assert found.position[2] == pytest.approx(1.5)
    assert found.box_max[2] == pytest.approx(1.5) and found.box_min[2] == pytest.approx(1.5)
    # the wall would have pulled the x/y median and stretched the box: both are the object's
    assert found.position[0] == pytest.approx((79.5 - CAMERA.cx) * 1.5 / 100, abs=0.01)
    assert found.box_max[0] - found.box_min[0] < 40 * 1.5 / 100


def test_sphere_surface_lies_between_front_and_centre() -> None:
    centre, radius = np.array([0.3, -0.1, 2.0]), 0.25
    us, vs = np.meshgrid(np.arange(W), np.arange(H))
    rays = np.stack([(us - CAMERA.cx) / CAMERA.fx, (vs - CAMERA.cy) / CAMERA.fy, np.ones_like(us, float)], -1)
    # nearest intersection t of the ray t*d with the sphere (z-depth = t since d_z = 1)
    a = (rays ** 2).sum(-1)
    b = -2 * rays @ centre
    c = centre @ centre - radius ** 2
    disc = b * b - 4 * a * c
    hit = disc > 0
    depth = np.where(hit, (-b - np.sqrt(np.where(hit, disc, 0))) / (2 * a), np.nan).astype(np.float32)
    found = locate(hit, depth, CAMERA, DepthSettings(box_percentiles=(0.0, 100.0)))
    assert found is not None
    # the visible cap is symmetric about the line of sight to the centre: its centroid lies on it,
    # between the nearest surface point and the centre
    direction = centre / np.linalg.norm(centre)
    assert np.linalg.norm(np.cross(found.position, direction)) < 0.01
    assert np.linalg.norm(centre) - radius < np.linalg.norm(found.position) < np.linalg.norm(centre)
    assert found.box_min[2] == pytest.approx(centre[2] - radius, abs=0.01)
    assert found.box_max[0] - found.box_min[0] == pytest.approx(2 * radius, abs=0.05)


def test_32fc1_invalid_readings_and_too_few_points() -> None:
    depth = np.full((H, W), np.nan, np.float32)
    depth[0, :3] = [1.0, np.inf, -2.0]
    metres = depth_in_metres(depth, "32FC1")
    assert np.isfinite(metres).sum() == 1
    assert locate(np.ones((H, W), bool), metres, CAMERA) is None
    assert locate(np.zeros((H, W), bool), np.ones((H, W), np.float32), CAMERA) is None


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="registered to colour"):
        locate(np.ones((H, W), bool), np.ones((H // 2, W // 2), np.float32), CAMERA)
    with pytest.raises(ValueError, match="camera info describes"):
        locate(np.ones((H, W), bool), np.ones((H, W), np.float32), CameraMatrix(100, 100, 50, 50, 100, 100))
    with pytest.raises(ValueError, match="K = 0"):
        CameraMatrix.from_k([0.0] * 9, W, H)
    with pytest.raises(ValueError, match="9 values"):
        CameraMatrix.from_k([1.0] * 4, W, H)
    with pytest.raises(ValueError, match="not supported"):
        depth_in_metres(np.ones((H, W), np.uint8), "mono8")
    with pytest.raises(ValueError, match="uint16"):
        depth_in_metres(np.ones((H, W), np.float32), "16UC1")
