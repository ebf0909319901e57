"""Pinhole cameras, poses and camera paths (single views, orbits, walk-throughs).

Conventions (every exporter states which one it writes):

* **Pose** ``world_from_camera``: a 4x4 matrix taking camera coordinates to world (``map``)
  coordinates, in the **OpenCV / ROS optical** convention: camera +x right, +y down, +z forward
  (REP 103 ``*_optical_frame``). The world is +z up.
* **nerfstudio / OpenGL** convention (``transforms.json``): camera +x right, +y up, +z backward, so
  ``c2w_opengl = world_from_camera @ diag(1, -1, -1, 1)`` (see ``opencv_to_opengl``).
* **Intrinsics** ``fx, fy, cx, cy`` in the OpenCV / ROS CameraInfo convention: the centre of pixel
  (u, v) has coordinates (u, v), so a camera point (x, y, z) lands on pixel
  ``round(fx x / z + cx), round(fy y / z + cy)``. nerfstudio puts pixel centres at (u + 0.5, v + 0.5);
  its ``cx``/``cy`` are therefore ours + 0.5 (``Intrinsics.nerfstudio``). With ``cx = (w - 1) / 2``
  the optical axis passes through the image centre, and nerfstudio's value is exactly ``w / 2``.
* **Depth** is z-depth (distance along the optical axis), as depth cameras report it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass(frozen=True)
class Intrinsics:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float = 62.0) -> Intrinsics:
        """Square pixels, principal point at the image centre, horizontal field of view ``hfov_deg``."""
        if width < 8 or height < 8:
            raise ValueError(f"image size {width}x{height} is too small (at least 8x8)")
        if not 10.0 <= hfov_deg <= 150.0:
            raise ValueError(f"horizontal field of view {hfov_deg} deg outside 10..150")
        f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
        return cls(int(width), int(height), f, f, (width - 1) / 2.0, (height - 1) / 2.0)

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def nerfstudio(self) -> dict[str, float | int]:
        """The intrinsics as nerfstudio's transforms.json keys (pixel centres at +0.5)."""
        return {"fl_x": self.fx, "fl_y": self.fy, "cx": self.cx + 0.5, "cy": self.cy + 0.5,
                "w": self.width, "h": self.height}

    def to_dict(self) -> dict[str, float | int]:
        return {"width": self.width, "height": self.height, "fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy}


def parse_size(text: str) -> tuple[int, int]:
    """'640x480' -> (640, 480), with an error that says what a size looks like."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"bad size {text!r}: expected WIDTHxHEIGHT, e.g. 320x240")
    width, height = int(parts[0]), int(parts[1])
    if not (16 <= width <= 4096 and 16 <= height <= 4096):
        raise ValueError(f"bad size {text!r}: width and height must be within 16..4096")
    return width, height


def look_at(eye: np.ndarray, target: np.ndarray, up: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> np.ndarray:
    """``world_from_camera`` (OpenCV optical axes) of a camera at ``eye`` looking at ``target``."""
    eye, target = np.asarray(eye, dtype=float), np.asarray(target, dtype=float)
    forward = target - eye
    norm = np.linalg.norm(forward)
    if norm < 1e-9:
        raise ValueError("camera eye and target coincide")
    forward /= norm
    right = np.cross(forward, np.asarray(up, dtype=float))
    if np.linalg.norm(right) < 1e-6:  # looking straight up or down: any right vector will do
        right = np.cross(forward, np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, eye
    return pose


def opencv_to_opengl(world_from_camera: np.ndarray) -> np.ndarray:
    """Camera-to-world in nerfstudio's OpenGL axes from an OpenCV-axes pose."""
    return world_from_camera @ OPENCV_TO_OPENGL


def project(points_world: np.ndarray, world_from_camera: np.ndarray, intrinsics: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (N, 2) (pixel centres at integers) and z-depths (N,) of world points."""
    pc = to_camera(points_world, world_from_camera)
    z = pc[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = np.stack([intrinsics.fx * pc[:, 0] / z + intrinsics.cx, intrinsics.fy * pc[:, 1] / z + intrinsics.cy], axis=1)
    return uv, z


def to_camera(points_world: np.ndarray, world_from_camera: np.ndarray) -> np.ndarray:
    camera_from_world = np.linalg.inv(world_from_camera)
    return np.asarray(points_world, dtype=float) @ camera_from_world[:3, :3].T + camera_from_world[:3, 3]


def pixel_directions(intrinsics: Intrinsics, world_from_camera: np.ndarray,
                     u: np.ndarray | None = None, v: np.ndarray | None = None) -> np.ndarray:
    """World-frame ray directions through pixel centres, scaled so that their camera z is 1:
    a hit distance along such a ray *is* the z-depth. Whole image (H, W, 3) unless u, v given."""
    if u is None or v is None:
        v, u = np.mgrid[0 : intrinsics.height, 0 : intrinsics.width]
    d = np.stack([(u - intrinsics.cx) / intrinsics.fx, (v - intrinsics.cy) / intrinsics.fy, np.ones(np.shape(u))], axis=-1)
    return d @ world_from_camera[:3, :3].T


def quaternion_xyzw(rotation: np.ndarray) -> tuple[float, float, float, float]:
    """Unit quaternion (x, y, z, w) of a rotation matrix, w >= 0 (ROS geometry_msgs order)."""
    m = rotation
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        w, x, y, z = 0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        w, x, y, z = (m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        w, x, y, z = (m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        w, x, y, z = (m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s
    q = np.array([x, y, z, w])
    q /= np.linalg.norm(q)
    if q[3] < 0:
        q = -q
    return tuple(float(v) for v in q)


def quaternion_to_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


# ----------------------------------------------------------------------------- camera paths


def orbit(center: np.ndarray, radius: float, height: float, count: int, start_angle: float = 0.0,
          turns: float = 1.0) -> list[np.ndarray]:
    """``count`` poses on a horizontal circle around ``center`` at ``height`` above it, all looking at it."""
    center = np.asarray(center, dtype=float)
    poses = []
    for i in range(count):
        a = start_angle + 2.0 * math.pi * turns * i / count
        eye = center + np.array([radius * math.cos(a), radius * math.sin(a), height])
        poses.append(look_at(eye, center))
    return poses


def _catmull_rom_closed(points: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Closed (periodic) Catmull-Rom spline through ``points`` at parameters t in [0, 1)."""
    n = len(points)
    s = (t % 1.0) * n
    i = np.floor(s).astype(int)
    f = (s - i)[:, None]
    p0, p1, p2, p3 = (points[(i + k) % n] for k in (-1, 0, 1, 2))
    return 0.5 * ((2 * p1) + (-p0 + p2) * f + (2 * p0 - 5 * p1 + 4 * p2 - p3) * f**2 + (-p0 + 3 * p1 - 3 * p2 + p3) * f**3)


def smooth_path(eye_waypoints: np.ndarray, target_waypoints: np.ndarray, count: int) -> list[np.ndarray]:
    """Poses along closed splines through eye and look-at waypoints, evenly spaced by eye arc length
    (constant speed, like a robot's walk)."""
    dense_t = np.linspace(0.0, 1.0, 2048, endpoint=False)
    dense = _catmull_rom_closed(eye_waypoints, dense_t)
    seg = np.linalg.norm(np.diff(np.vstack([dense, dense[:1]]), axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    wanted = np.linspace(0.0, arc[-1], count, endpoint=False)
    t = np.interp(wanted, arc, np.append(dense_t, 1.0))
    eyes = _catmull_rom_closed(eye_waypoints, t)
    targets = _catmull_rom_closed(target_waypoints, t)
    return [look_at(e, g) for e, g in zip(eyes, targets)]
