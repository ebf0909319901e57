"""Where a segmented object is in 3D: its mask, an aligned depth image and the camera matrix K.

Plain numpy, no ROS. Coordinates are the camera's optical frame (REP 103 ``*_optical_frame``,
REP 105 units): x right, y down, z forward, metres. Depth is z-depth registered to the colour image
(same size, pixel for pixel), as RGB-D drivers publish it aligned to colour: ``16UC1`` millimetres
(0 = no reading) or ``32FC1`` metres (NaN, inf or <= 0 = no reading). Pixel centres are at integer
coordinates (the CameraInfo convention, find_ros.scenes.camera), so a pixel (u, v) with depth z is
the point ((u - cx) z / fx, (v - cy) z / fy, z).

A mask's edge often spills onto what lies behind or in front of the object, so its depth pixels are
not all the object's: the points kept are those whose depth lies within a few robust standard
deviations (1.4826 MAD) of the mask's median depth. The position is the per-axis median of the kept
points (the centroid of the visible surface, robust to what survives), the box their per-axis
percentiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MM_PER_M = 1000.0
DEPTH_ENCODINGS = ("16UC1", "32FC1")


@dataclass(frozen=True)
class DepthSettings:
    """How a mask's depth points are filtered and summarised."""

    outlier_sigmas: float = 3.0      # keep depths within this many robust std devs of the median
    min_spread_m: float = 0.02       # ... but never a band narrower than this (a flat, head-on surface)
    box_percentiles: tuple[float, float] = (2.0, 98.0)
    min_points: int = 5              # fewer valid depth pixels: no 3D answer
    max_depth_m: float = 100.0       # readings beyond are treated as invalid

    def __post_init__(self) -> None:
        low, high = self.box_percentiles
        if not 0.0 <= low < high <= 100.0:
            raise ValueError(f"box_percentiles must satisfy 0 <= low < high <= 100, got {self.box_percentiles}")
        if self.outlier_sigmas <= 0 or self.min_spread_m < 0 or self.min_points < 1 or self.max_depth_m <= 0:
            raise ValueError("outlier_sigmas and max_depth_m must be positive, min_spread_m >= 0, min_points >= 1")


@dataclass(frozen=True)
class CameraMatrix:
    """The pinhole part of sensor_msgs/CameraInfo: K's focal lengths and principal point, in pixels,
    and the image size it describes."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        if not (np.isfinite([self.fx, self.fy, self.cx, self.cy]).all() and self.fx > 0 and self.fy > 0):
            raise ValueError(f"camera matrix K needs finite fx, fy > 0 and finite cx, cy; got fx={self.fx} "
                             f"fy={self.fy} cx={self.cx} cy={self.cy} (an uncalibrated CameraInfo has K = 0)")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"camera info size must be positive, got {self.width}x{self.height}")

    @classmethod
    def from_k(cls, k: Sequence[float], width: int, height: int) -> CameraMatrix:
        """From CameraInfo.k (row-major 3x3) and CameraInfo.width/height."""
        values = np.asarray(k, dtype=float).reshape(-1)
        if values.size != 9:
            raise ValueError(f"camera matrix K must have 9 values, got {values.size}")
        return cls(float(values[0]), float(values[4]), float(values[2]), float(values[5]), int(width), int(height))

    def project(self, point: np.ndarray) -> tuple[float, float]:
        """The pixel (u, v) a camera-frame point lands on (z > 0)."""
        x, y, z = (float(c) for c in point)
        return self.fx * x / z + self.cx, self.fy * y / z + self.cy


@dataclass(frozen=True)
class Position3D:
    """A segment in the camera's optical frame, metres."""

    position: np.ndarray  # (3,) robust centroid of the visible surface
    box_min: np.ndarray   # (3,) axis-aligned box of the kept points
    box_max: np.ndarray
    points: int           # depth pixels the answer rests on


def depth_in_metres(depth: np.ndarray, encoding: str, max_depth_m: float = DepthSettings.max_depth_m) -> np.ndarray:
    """A depth image as float32 metres, NaN where there is no reading."""
    if encoding == "16UC1":
        if depth.dtype != np.uint16:
            raise ValueError(f"16UC1 depth must be uint16, got {depth.dtype}")
        metres = depth.astype(np.float32) / MM_PER_M
    elif encoding == "32FC1":
        metres = np.asarray(depth, dtype=np.float32).copy()
    else:
        raise ValueError(f"depth encoding {encoding!r} is not supported; expected one of {', '.join(DEPTH_ENCODINGS)}")
    if metres.ndim != 2:
        raise ValueError(f"depth image must be single-channel (H, W), got shape {metres.shape}")
    metres[~np.isfinite(metres) | (metres <= 0) | (metres > max_depth_m)] = np.nan
    return metres


def check_aligned(mask_shape: tuple[int, ...], depth_shape: tuple[int, ...], camera: CameraMatrix) -> None:
    """Refuse a depth image or CameraInfo that does not describe the colour image pixel for pixel."""
    if tuple(depth_shape[:2]) != tuple(mask_shape[:2]):
        raise ValueError(f"depth image is {depth_shape[1]}x{depth_shape[0]} but the colour image is "
                         f"{mask_shape[1]}x{mask_shape[0]}: depth must be registered to colour (aligned, same size)")
    if (camera.height, camera.width) != tuple(mask_shape[:2]):
        raise ValueError(f"camera info describes {camera.width}x{camera.height} images but the colour image is "
                         f"{mask_shape[1]}x{mask_shape[0]}")


def back_project(us: np.ndarray, vs: np.ndarray, z: np.ndarray, camera: CameraMatrix) -> np.ndarray:
    """(N, 3) camera-frame points of pixels (us, vs) at z-depths ``z``."""
    z = np.asarray(z, dtype=np.float64)
    return np.stack([(us - camera.cx) * z / camera.fx, (vs - camera.cy) * z / camera.fy, z], axis=1)


def locate(mask: np.ndarray, depth_m: np.ndarray, camera: CameraMatrix,
           settings: DepthSettings = DepthSettings()) -> Position3D | None:
    """The 3D position and box of ``mask`` (bool, H x W) from ``depth_m`` (metres, NaN = none, see
    :func:`depth_in_metres`); None when fewer than ``settings.min_points`` valid depth pixels remain."""
    mask = np.asarray(mask, dtype=bool)
    check_aligned(mask.shape, depth_m.shape, camera)
    vs, us = np.nonzero(mask & np.isfinite(depth_m))
    if len(vs) < settings.min_points:
        return None
    z = depth_m[vs, us].astype(np.float64)
    median = np.median(z)
    spread = max(settings.outlier_sigmas * 1.4826 * np.median(np.abs(z - median)), settings.min_spread_m)
    keep = np.abs(z - median) <= spread
    if keep.sum() < settings.min_points:
        return None
    points = back_project(us[keep], vs[keep], z[keep], camera)
    low, high = np.percentile(points, settings.box_percentiles, axis=0)
    return Position3D(np.median(points, axis=0), low, high, len(points))


@dataclass(frozen=True)
class DepthView:
    """One frame's depth (metres, NaN = none) and its camera: what 3D answers for that frame need."""

    depth_m: np.ndarray
    camera: CameraMatrix
    settings: DepthSettings = DepthSettings()

    def locate(self, mask: np.ndarray) -> Position3D | None:
        return locate(mask, self.depth_m, self.camera, self.settings)
