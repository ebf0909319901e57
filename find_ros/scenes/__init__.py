"""The synthetic world: procedural scenes rendered with open3d ray casting, with exact ground truth
written in the formats real data comes in (COCO panoptic / instances / captions, RefCOCO refs,
FIND-Bench entities with interleave references, rosbag2, nerfstudio).

Entry points::

    make_dataset(out, images, seed, splits=("train",), size=(320, 240))   # find-ros scenes make
    make_trajectory(out, frames, seed, size=(320, 240), path="walk")      # find-ros scenes trajectory
    render_example(seed, split, index, image_id, size)  -> Example(scene, frame, annotation)
    sample_scene(rng) -> Scene;  Renderer(scene).render(world_from_camera, intrinsics, rng) -> Frame

Module map: vocabulary (words, categories, ids), world (scene model and sampling), geometry
(meshes, normals), camera (intrinsics, poses, conventions), viewpoints (camera placement and
paths), shading (materials, lights, sensor), render (ray casting, ground truth per frame),
referring / captions / annotate (language ground truth), interleave (references across images),
records / coco / refcoco / findbench (image dataset exports), rosbag / nerfstudio (trajectory
exports), dataset / trajectory (the two commands), sheet (contact sheet), files (reproducible I/O).
"""

from __future__ import annotations

from find_ros.scenes.camera import Intrinsics, look_at, opencv_to_opengl, project
from find_ros.scenes.dataset import Example, make_dataset, render_example
from find_ros.scenes.render import ElementView, Frame, Renderer
from find_ros.scenes.trajectory import make_trajectory
from find_ros.scenes.world import Scene, Thing, sample_scene

__all__ = [
    "ElementView",
    "Example",
    "Frame",
    "Intrinsics",
    "Renderer",
    "Scene",
    "Thing",
    "look_at",
    "make_dataset",
    "make_trajectory",
    "opencv_to_opengl",
    "project",
    "render_example",
    "sample_scene",
]
