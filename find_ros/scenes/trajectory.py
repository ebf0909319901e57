"""`find-ros scenes trajectory`: a camera moving through one scene, as a rosbag2 and a nerfstudio
dataset, with the scene's 3D ground truth.

Layout of ``OUT``::

    OUT/ground_truth.json   the 3D and per-frame ground truth (below)
    OUT/rosbag/             rosbag2 (metadata.yaml + rosbag.mcap or rosbag.db3), topics in rosbag.py
    OUT/nerfstudio/         nerfstudio dataset (transforms.json, images/, depth/, instances/), nerfstudio.py

``ground_truth.json`` (world = ``map``, metres, +z up; poses ``world_from_camera`` in OpenCV axes)::

    {"format": "find_ros.scenes/trajectory", "version": 1, "seed", "path", "fps", "frame_count",
     "conventions": {...}, "intrinsics": {"width", "height", "fx", "fy", "cx", "cy"},
     "extent": {"objects" | "room" | "cameras": {"min", "max", "size", "diagonal"}},
     "objects": [{"id", "category", "category_id", "shape", "color", "size", "material", "texture",
                  "support", "name", "expressions", "center", "aabb": {"min", "max"}, "radius",
                  "world_from_local"}],
     "stuff":   [{"id", "category", "category_id", "finish", "texture", "aabb"}],
     "frames":  [{"index", "stamp_ns", "image", "world_from_camera",
                  "visible": [{"id", "area", "bbox", "visible_fraction"}]}]}

``id`` is the element id in the instance masks (bag and nerfstudio). Object ``expressions`` are
attribute-only and unique in the whole scene (no two objects share shape and colour), so they hold
from every frame; ``visible`` lists every element with at least one pixel, things with their
visible fraction (occlusion and image border), which tells which frames show an object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from find_ros.scenes import vocabulary as V
from find_ros.scenes.camera import Intrinsics
from find_ros.scenes.dataset import generators, prepare_output
from find_ros.scenes.files import write_json
from find_ros.scenes.nerfstudio import transforms_json, write_frame
from find_ros.scenes.referring import scene_names
from find_ros.scenes.render import Frame, Renderer
from find_ros.scenes.rosbag import STORAGES, TrajectoryBagWriter, stamp_ns
from find_ros.scenes.viewpoints import PATHS, camera_path
from find_ros.scenes.world import Scene, sample_scene

MAX_FRAMES = 20_000
CONVENTIONS = {
    "world_frame": "map, metres, +z up",
    "pose": "world_from_camera: camera-to-world 4x4, OpenCV optical axes (x right, y down, z forward)",
    "pixels": "pixel (u, v) has its centre at (u, v) (OpenCV / ROS CameraInfo); nerfstudio cx, cy are +0.5",
    "depth": "z-depth along the optical axis; 16-bit PNGs and 16UC1 images in millimetres",
    "instances": "element id per pixel: 0 none, things 1..49, stuff 50+ (floor 50, wall 51, ceiling 52, table 53, cabinet 54)",
    "nerfstudio": "transform_matrix = world_from_camera @ diag(1, -1, -1, 1) (OpenGL camera axes)",
}


def _box(lo: np.ndarray, hi: np.ndarray) -> dict[str, Any]:
    return {"min": np.round(lo, 6).tolist(), "max": np.round(hi, 6).tolist(), "size": np.round(hi - lo, 6).tolist(),
            "diagonal": round(float(np.linalg.norm(hi - lo)), 6)}


def scene_objects(scene: Scene) -> list[dict[str, Any]]:
    names = scene_names(list(scene.things))
    objects = []
    for t in scene.things:
        lo, hi = t.aabb
        objects.append({
            "id": t.id, "category": t.shape, "category_id": V.CATEGORY_BY_NAME[t.shape].id,
            "shape": t.shape, "color": t.color, "size": t.size, "material": t.material, "texture": t.texture,
            "support": t.support, "name": t.name, "expressions": names[t.id],
            "center": np.round(t.center, 6).tolist(),
            "aabb": {"min": np.round(lo, 6).tolist(), "max": np.round(hi, 6).tolist()},
            "radius": round(t.radius, 6), "world_from_local": np.round(t.world_from_local, 9).tolist(),
        })
    return objects


def scene_stuff(scene: Scene) -> list[dict[str, Any]]:
    stuff = []
    for s in scene.stuff:
        lo, hi = s.aabb
        stuff.append({"id": s.id, "category": s.category, "category_id": V.CATEGORY_BY_NAME[s.category].id,
                      "finish": s.finish, "texture": s.texture,
                      "aabb": {"min": np.round(lo, 6).tolist(), "max": np.round(hi, 6).tolist()}})
    return stuff


def frame_entry(index: int, stamp: int, frame: Frame) -> dict[str, Any]:
    visible = []
    for element_id in sorted(frame.views):
        view = frame.views[element_id]
        entry: dict[str, Any] = {"id": element_id, "area": view.area, "bbox": list(view.bbox)}
        if view.amodal_area is not None:
            entry["visible_fraction"] = round(view.visible_fraction, 6)
        visible.append(entry)
    return {"index": index, "stamp_ns": stamp, "image": f"nerfstudio/images/frame_{index:05d}.png",
            "world_from_camera": np.round(frame.world_from_camera, 9).tolist(), "visible": visible}


def make_trajectory(
    out: str | Path,
    frames: int,
    seed: int,
    size: tuple[int, int] = (320, 240),
    path: str = "walk",
    fps: float = 10.0,
    storage: str = "mcap",
    force: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Render ``frames`` views along a camera path through one random scene; write the bag, the
    nerfstudio dataset and ground_truth.json. Returns the ground truth."""
    if not isinstance(frames, int) or frames < 2:
        raise ValueError(f"--frames must be an integer of at least 2, got {frames!r}")
    if frames > MAX_FRAMES:
        raise ValueError(f"--frames {frames} is more than {MAX_FRAMES}")
    if path not in PATHS:
        raise ValueError(f"unknown --path {path!r}; expected one of {', '.join(PATHS)}")
    if storage not in STORAGES:
        raise ValueError(f"unknown --storage {storage!r}; expected one of {', '.join(STORAGES)}")
    if not fps > 0:
        raise ValueError(f"--fps must be positive, got {fps}")
    intrinsics = Intrinsics.from_fov(*size, hfov_deg=65.0)
    out = prepare_output(Path(out), force)

    from tqdm import tqdm

    scene_rng, path_rng, sensor_rng = generators(seed, 0x7A4EC, count=3)
    scene = sample_scene(scene_rng, num_things=int(scene_rng.integers(5, 9)), distinct=True)
    poses = camera_path(scene, path, frames, path_rng)
    renderer = Renderer(scene)
    objects = scene_objects(scene)
    ns_root = out / "nerfstudio"
    ns_frames, gt_frames = [], []
    with TrajectoryBagWriter(out / "rosbag", intrinsics, storage) as bag:
        bag.write_objects(stamp_ns(0, fps), objects)
        for index, pose in enumerate(tqdm(poses, desc="scenes trajectory", unit="frame", disable=not progress)):
            frame = renderer.render(pose, intrinsics, sensor_rng)
            stamp = stamp_ns(index, fps)
            bag.write_frame(stamp, frame)
            ns_frames.append(write_frame(ns_root, index, frame))
            gt_frames.append(frame_entry(index, stamp, frame))
    write_json(ns_root / "transforms.json", transforms_json(intrinsics, ns_frames, "../ground_truth.json"))

    things_lo = np.min([t.aabb[0] for t in scene.things], axis=0)
    things_hi = np.max([t.aabb[1] for t in scene.things], axis=0)
    eyes = np.array([p[:3, 3] for p in poses])
    ground_truth = {
        "format": "find_ros.scenes/trajectory", "version": 1, "seed": int(seed), "path": path, "fps": fps,
        "frame_count": frames, "scene_kind": scene.kind, "conventions": CONVENTIONS,
        "intrinsics": intrinsics.to_dict(),
        "extent": {"objects": _box(things_lo, things_hi),
                   "room": _box(np.array(scene.room_min), np.array(scene.room_max)),
                   "cameras": _box(eyes.min(axis=0), eyes.max(axis=0))},
        "objects": objects, "stuff": scene_stuff(scene), "frames": gt_frames,
    }
    write_json(out / "ground_truth.json", ground_truth)
    return ground_truth
