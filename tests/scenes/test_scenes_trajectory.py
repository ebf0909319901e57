"""Trajectory exports: the rosbag2 reads back with rosbags, the nerfstudio dataset loads with
nerfstudio's own dataparser, and both agree with the 3D ground truth (reprojected object centres
land in their masks, through our poses and through nerfstudio's transformed cameras)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from scene_settings import SIZE, TRAJECTORY_FRAMES

from find_ros.image_io import read_rgb
from find_ros.scenes import vocabulary as V
from find_ros.scenes.annotate import min_area
from find_ros.scenes.camera import quaternion_to_matrix
from find_ros.scenes.files import read_png16
from find_ros.scenes.rosbag import CAMERA_FRAME, START_TIME_NS, WORLD_FRAME

TOPICS = {
    "/camera/color/image_raw": "sensor_msgs/msg/Image",
    "/camera/color/camera_info": "sensor_msgs/msg/CameraInfo",
    "/camera/depth/image_raw": "sensor_msgs/msg/Image",
    "/camera/pose": "geometry_msgs/msg/PoseStamped",
    "/tf": "tf2_msgs/msg/TFMessage",
    "/ground_truth/instances": "sensor_msgs/msg/Image",
    "/ground_truth/objects": "std_msgs/msg/String",
}


def _gt(trajectory_dir: Path) -> dict:
    return json.loads((trajectory_dir / "ground_truth.json").read_text())


def _image(msg) -> np.ndarray:  # noqa: ANN001 - rosbags message
    dtype = {"rgb8": np.uint8, "16UC1": np.dtype("<u2")}[msg.encoding]
    channels = 3 if msg.encoding == "rgb8" else 1
    assert msg.step == msg.width * channels * np.dtype(dtype).itemsize and msg.is_bigendian == 0
    array = np.frombuffer(msg.data.tobytes(), dtype=dtype).reshape(msg.height, msg.width, channels)
    return array[..., 0] if channels == 1 else array


def _in_mask(uv: np.ndarray, mask: np.ndarray, hollow: bool) -> bool:
    """Pixel inside the mask; for a torus (hollow) inside the mask's convex hull, since its
    centre is seen through the hole."""
    u, v = np.round(uv).astype(int)
    if not (0 <= u < mask.shape[1] and 0 <= v < mask.shape[0]):
        return False
    if not hollow:
        return bool(mask[v, u])
    points = cv2.findNonZero(mask.astype(np.uint8))
    return cv2.pointPolygonTest(cv2.convexHull(points), (float(u), float(v)), False) >= 0


def _parse_expression(text: str) -> dict[str, str]:
    """The attributes an expression's words name, read with the world's vocabulary."""
    words = set(re.findall(r"[a-z]+", text))
    wanted = {}
    for key, values in (("color", V.COLORS), ("size", V.SIZES), ("material", V.MATERIALS), ("support", V.SUPPORTS)):
        named = [v for v in values if v in words]
        assert len(named) <= 1, text
        if named:
            wanted[key] = named[0]
    shapes = [shape for shape, nouns in V.SHAPE_NOUNS.items() if words & set(nouns)]
    assert len(shapes) == 1, text
    wanted["shape"] = shapes[0]
    for texture, phrase in V.TEXTURE_PHRASES.items():
        if phrase and phrase in text:
            wanted["texture"] = texture
    return wanted


def _read_bag(trajectory_dir: Path) -> tuple[dict[str, list], dict[str, int]]:
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    messages: dict[str, list] = {}
    with Reader(trajectory_dir / "rosbag") as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        counts = {c.topic: c.msgcount for c in reader.connections}
        assert types == TOPICS
        for connection, timestamp, raw in reader.messages():
            messages.setdefault(connection.topic, []).append((timestamp, store.deserialize_cdr(raw, connection.msgtype)))
    return messages, counts


def test_bag_reads_back_and_matches_the_dataset(trajectory_dir: Path) -> None:
    gt = _gt(trajectory_dir)
    messages, counts = _read_bag(trajectory_dir)
    assert counts["/ground_truth/objects"] == 1
    assert all(counts[t] == TRAJECTORY_FRAMES for t in TOPICS if t != "/ground_truth/objects")
    assert json.loads(messages["/ground_truth/objects"][0][1].data) == gt["objects"]
    k = gt["intrinsics"]
    ns = trajectory_dir / "nerfstudio"
    for index in range(TRAJECTORY_FRAMES):
        stamp = gt["frames"][index]["stamp_ns"]
        assert stamp == START_TIME_NS + round(index * 1e9 / gt["fps"])
        by_topic = {topic: msgs[index] for topic, msgs in messages.items() if topic != "/ground_truth/objects"}
        for topic, (timestamp, msg) in by_topic.items():
            header = msg.transforms[0].header if topic == "/tf" else msg.header
            assert timestamp == stamp == header.stamp.sec * 10**9 + header.stamp.nanosec
            assert header.frame_id == (WORLD_FRAME if topic in ("/tf", "/camera/pose") else CAMERA_FRAME)
        name = f"frame_{index:05d}.png"
        assert np.array_equal(_image(by_topic["/camera/color/image_raw"][1]), read_rgb(ns / "images" / name))
        assert np.array_equal(_image(by_topic["/ground_truth/instances"][1]), read_png16(ns / "instances" / name))
        assert np.array_equal(_image(by_topic["/camera/depth/image_raw"][1]), read_png16(ns / "depth" / name))
        info = by_topic["/camera/color/camera_info"][1]
        assert (info.width, info.height) == SIZE and info.distortion_model == "plumb_bob"
        assert np.allclose(info.k.reshape(3, 3), [[k["fx"], 0, k["cx"]], [0, k["fy"], k["cy"]], [0, 0, 1]])
        truth = np.array(gt["frames"][index]["world_from_camera"])
        pose = by_topic["/camera/pose"][1].pose
        q = pose.orientation
        assert np.allclose(quaternion_to_matrix(q.x, q.y, q.z, q.w), truth[:3, :3], atol=1e-9)
        assert np.allclose([pose.position.x, pose.position.y, pose.position.z], truth[:3, 3])
        tf = by_topic["/tf"][1].transforms[0]
        assert tf.child_frame_id == CAMERA_FRAME and tf.transform.rotation == q


def test_centres_reproject_into_masks_with_exported_poses(trajectory_dir: Path) -> None:
    gt = _gt(trajectory_dir)
    k = gt["intrinsics"]
    objects = {o["id"]: o for o in gt["objects"]}
    checked = 0
    for frame in gt["frames"]:
        ids = read_png16(trajectory_dir / frame["image"].replace("images", "instances"))
        depth = read_png16(trajectory_dir / frame["image"].replace("images", "depth")) / 1000.0
        # Visible areas in the sidecar are the instance mask's pixel counts.
        counts = np.bincount(ids.ravel())
        assert {v["id"]: v["area"] for v in frame["visible"]} == {i: int(c) for i, c in enumerate(counts) if c and i}
        camera_from_world = np.linalg.inv(np.array(frame["world_from_camera"]))
        for view in frame["visible"]:
            if view["id"] not in objects or view["visible_fraction"] < 0.99:
                continue  # occluded or cut by the border: its centre may legitimately fall outside
            obj = objects[view["id"]]
            x, y, z = camera_from_world[:3, :3] @ np.array(obj["center"]) + camera_from_world[:3, 3]
            uv = np.array([k["fx"] * x / z + k["cx"], k["fy"] * y / z + k["cy"]])
            assert _in_mask(uv, ids == obj["id"], hollow=obj["shape"] == "torus"), (frame["index"], obj["name"])
            if obj["shape"] != "torus":
                u, v = np.round(uv).astype(int)
                assert z - obj["radius"] - 0.01 <= depth[v, u] <= z + 0.01
            checked += 1
    assert checked >= TRAJECTORY_FRAMES


def test_nerfstudio_dataparser_loads_and_its_cameras_see_the_objects(trajectory_dir: Path) -> None:
    import torch
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    gt = _gt(trajectory_dir)
    outputs = NerfstudioDataParserConfig(data=trajectory_dir / "nerfstudio").setup().get_dataparser_outputs("train")
    cameras = outputs.cameras
    assert 0 < len(outputs.image_filenames) < TRAJECTORY_FRAMES
    assert len(outputs.metadata["depth_filenames"]) == len(outputs.image_filenames)
    assert torch.allclose(cameras.cx, torch.tensor(SIZE[0] / 2.0)) and torch.allclose(cameras.cy, torch.tensor(SIZE[1] / 2.0))
    # Ground-truth centres, moved into nerfstudio's normalised space as the dataparser moved the poses.
    transform = outputs.dataparser_transform.double().numpy()
    scale = float(outputs.dataparser_scale)
    objects = {o["id"]: o for o in gt["objects"]}
    frames = {f["index"]: f for f in gt["frames"]}
    checked = 0
    for i, path in enumerate(outputs.image_filenames):
        index = int(re.search(r"frame_(\d+)", Path(path).name).group(1))
        ids = read_png16(trajectory_dir / "nerfstudio" / "instances" / Path(path).name)
        c2w = cameras.camera_to_worlds[i].double().numpy()  # OpenGL axes
        fx, fy = float(cameras.fx[i]), float(cameras.fy[i])
        cx, cy = float(cameras.cx[i]), float(cameras.cy[i])
        for view in frames[index]["visible"]:
            if view["id"] not in objects or view["visible_fraction"] < 0.99:
                continue
            obj = objects[view["id"]]
            p = scale * (transform[:, :3] @ np.array(obj["center"]) + transform[:, 3])
            x, y, z = c2w[:, :3].T @ (p - c2w[:, 3])
            # OpenGL camera looks down -z; nerfstudio pixel centres sit at +0.5.
            uv = np.array([fx * x / -z + cx - 0.5, fy * -y / -z + cy - 0.5])
            assert _in_mask(uv, ids == obj["id"], hollow=obj["shape"] == "torus"), (index, obj["name"])
            checked += 1
    assert checked >= len(outputs.image_filenames) // 2


def test_ground_truth_describes_objects_uniquely_and_they_come_and_go(trajectory_dir: Path) -> None:
    gt = _gt(trajectory_dir)
    assert gt["conventions"]["pose"].startswith("world_from_camera")
    for part in ("objects", "room", "cameras"):
        box = gt["extent"][part]
        assert np.allclose(np.array(box["max"]) - np.array(box["min"]), box["size"]) and box["diagonal"] > 0
    objects = gt["objects"]
    assert len({(o["shape"], o["color"]) for o in objects}) == len(objects) >= 5
    for o in objects:
        lo, hi = np.array(o["aabb"]["min"]), np.array(o["aabb"]["max"])
        assert np.allclose((lo + hi) / 2, o["center"], atol=1e-5)
        assert (lo >= np.array(gt["extent"]["objects"]["min"]) - 1e-6).all()
        assert o["expressions"], o["name"]
        for text in o["expressions"]:
            wanted = _parse_expression(text)
            fits = [p["id"] for p in objects if all(p[key] == value for key, value in wanted.items())]
            assert fits == [o["id"]], text
    # Walk-throughs look away from the table: some object is seen in some frames and not in others.
    threshold = min_area(*SIZE)
    seen = {o["id"]: [any(v["id"] == o["id"] and v["area"] >= threshold for v in f["visible"]) for f in gt["frames"]]
            for o in objects}
    assert any(0 < sum(s) < len(s) for s in seen.values())
    assert all(any(s) for s in seen.values()) or sum(any(s) for s in seen.values()) >= len(objects) - 2


@pytest.mark.parametrize("storage", ["sqlite3"])
def test_sqlite3_storage_reads_back(tmp_path: Path, storage: str) -> None:
    from rosbags.rosbag2 import Reader

    from find_ros.scenes import make_trajectory

    make_trajectory(tmp_path / "t", 3, 1, size=(64, 48), storage=storage, progress=False)
    with Reader(tmp_path / "t" / "rosbag") as reader:
        assert reader.message_count == 6 * 3 + 1
        assert {c.msgtype for c in reader.connections} == set(TOPICS.values())


def test_walk_is_smooth_and_orbit_circles_the_table(trajectory_dir: Path, tmp_path: Path) -> None:
    from find_ros.scenes import make_trajectory

    eyes = np.array([np.array(f["world_from_camera"])[:3, 3] for f in _gt(trajectory_dir)["frames"]])
    steps = np.linalg.norm(np.diff(np.vstack([eyes, eyes[:1]]), axis=0), axis=1)
    assert steps.max() < 1.3 * steps.min()  # constant walking speed along a closed loop
    gt = make_trajectory(tmp_path / "orbit", 6, 4, size=(64, 48), path="orbit", progress=False)
    table = next(s for s in gt["stuff"] if s["category"] == "table")
    centre = (np.array(table["aabb"]["min"]) + np.array(table["aabb"]["max"])) / 2
    radii = [np.linalg.norm((np.array(f["world_from_camera"])[:3, 3] - centre)[:2]) for f in gt["frames"]]
    assert max(radii) - min(radii) < 0.02
    assert all(any(v["id"] == table["id"] for v in f["visible"]) for f in gt["frames"])
