"""A nerfstudio dataset (``nerfstudio-data`` format) of a trajectory.

Layout of the dataset folder::

    transforms.json          camera_model OPENCV, fl_x, fl_y, cx, cy, w, h, k1 k2 p1 p2 = 0, frames
    images/frame_00000.png   colour (8-bit RGB PNG)
    depth/frame_00000.png    z-depth, 16-bit PNG in millimetres (nerfstudio's default
                             depth_unit_scale_factor 1e-3 turns it into metres)
    instances/frame_00000.png  ground-truth element id per pixel, 16-bit PNG (not read by nerfstudio)

Each frame: ``file_path``, ``depth_file_path``, ``instance_file_path`` and ``transform_matrix``,
the camera-to-world matrix in nerfstudio's **OpenGL** camera axes (x right, y up, z back), i.e.
``world_from_camera (OpenCV) @ diag(1, -1, -1, 1)``; the world is the scene's ``map`` frame
(metres, +z up). Intrinsics follow nerfstudio's pixel-centre convention: ``cx``/``cy`` are the
OpenCV values + 0.5 (see ``find_ros.scenes.camera``). ``ground_truth_file`` points at the 3D ground
truth sidecar. nerfstudio's dataparser re-orients, centres and scales the poses; to compare its
outputs with the sidecar, map world points with ``dataparser_transform`` and ``dataparser_scale``
from its ``DataparserOutputs``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from find_ros.scenes.camera import Intrinsics, opencv_to_opengl
from find_ros.scenes.files import write_image
from find_ros.scenes.render import Frame
from find_ros.scenes.rosbag import depth_millimetres


def frame_files(index: int) -> dict[str, str]:
    name = f"frame_{index:05d}.png"
    return {"file_path": f"images/{name}", "depth_file_path": f"depth/{name}", "instance_file_path": f"instances/{name}"}


def write_frame(root: Path, index: int, frame: Frame) -> dict[str, Any]:
    """Write one frame's files; returns its transforms.json entry."""
    files = frame_files(index)
    write_image(root / files["file_path"], frame.rgb)
    write_image(root / files["depth_file_path"], depth_millimetres(frame.depth))
    write_image(root / files["instance_file_path"], frame.ids.astype(np.uint16))
    c2w = opencv_to_opengl(frame.world_from_camera)
    return {**files, "transform_matrix": np.round(c2w, 9).tolist()}


def transforms_json(intrinsics: Intrinsics, frames: list[dict[str, Any]], ground_truth_file: str) -> dict[str, Any]:
    return {
        "camera_model": "OPENCV",
        **intrinsics.nerfstudio(),
        "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0,
        "ground_truth_file": ground_truth_file,
        "frames": frames,
    }
