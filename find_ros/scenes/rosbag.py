"""A rosbag2 of a camera trajectory, written with the ``rosbags`` library (no ROS install needed).

Storage ``mcap`` (the ROS 2 default since Iron) or ``sqlite3``; message types from the ROS 2 Humble
type store (identical definitions in Jazzy and Kilted). Per frame, all messages share one stamp,
which is also the bag's receive time: ``START_TIME_NS + round(index * 1e9 / fps)`` (a fixed
epoch, never the wall clock, so bags are reproducible).

Topics (``CAMERA_FRAME`` is the REP 103 optical frame: x right, y down, z forward):

=============================  ===========================  ==================================
``/camera/color/image_raw``    sensor_msgs/msg/Image        ``rgb8``, frame ``CAMERA_FRAME``
``/camera/color/camera_info``  sensor_msgs/msg/CameraInfo   plumb_bob, zero distortion, K, P
``/camera/depth/image_raw``    sensor_msgs/msg/Image        ``16UC1`` z-depth in millimetres,
                                                            registered to the colour camera
``/camera/pose``               geometry_msgs/msg/PoseStamped  pose of ``CAMERA_FRAME`` in ``map``
``/tf``                        tf2_msgs/msg/TFMessage       ``map`` -> ``CAMERA_FRAME``
``/ground_truth/instances``    sensor_msgs/msg/Image        ``16UC1`` element id per pixel
                                                            (0 none; things 1..49, stuff 50+)
``/ground_truth/objects``      std_msgs/msg/String          once, at the first stamp: JSON list of
                                                            the objects of ground_truth.json
=============================  ===========================  ==================================
"""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from find_ros.scenes.camera import Intrinsics, quaternion_xyzw
from find_ros.scenes.render import Frame

WORLD_FRAME = "map"
CAMERA_FRAME = "camera_color_optical_frame"
START_TIME_NS = 1_700_000_000 * 10**9
TOPIC_IMAGE = "/camera/color/image_raw"
TOPIC_CAMERA_INFO = "/camera/color/camera_info"
TOPIC_DEPTH = "/camera/depth/image_raw"
TOPIC_POSE = "/camera/pose"
TOPIC_TF = "/tf"
TOPIC_INSTANCES = "/ground_truth/instances"
TOPIC_OBJECTS = "/ground_truth/objects"
STORAGES: tuple[str, ...] = ("mcap", "sqlite3")


def stamp_ns(index: int, fps: float) -> int:
    return START_TIME_NS + int(round(index * 1e9 / fps))


class TrajectoryBagWriter:
    """Streams frames into a new rosbag2 directory ``path`` (which must not exist yet)."""

    def __init__(self, path: Path, intrinsics: Intrinsics, storage: str = "mcap") -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore

        if storage not in STORAGES:
            raise ValueError(f"unknown bag storage {storage!r}; expected one of {', '.join(STORAGES)}")
        self.path = Path(path)
        self.intrinsics = intrinsics
        self.ts = get_typestore(Stores.ROS2_HUMBLE)
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=9, storage_plugin=plugin)
        self._connections: dict[str, Any] = {}
        self._topics = {
            TOPIC_OBJECTS: "std_msgs/msg/String",
            TOPIC_IMAGE: "sensor_msgs/msg/Image",
            TOPIC_CAMERA_INFO: "sensor_msgs/msg/CameraInfo",
            TOPIC_DEPTH: "sensor_msgs/msg/Image",
            TOPIC_POSE: "geometry_msgs/msg/PoseStamped",
            TOPIC_TF: "tf2_msgs/msg/TFMessage",
            TOPIC_INSTANCES: "sensor_msgs/msg/Image",
        }

    def __enter__(self) -> TrajectoryBagWriter:
        self._writer.open()
        for topic, msgtype in self._topics.items():
            self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=self.ts)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._writer.close()

    def _write(self, topic: str, stamp: int, message: Any) -> None:
        data = self.ts.serialize_cdr(message, self._topics[topic])
        self._writer.write(self._connections[topic], stamp, data)

    def _header(self, stamp: int, frame_id: str) -> Any:
        t = self.ts.types
        return t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=stamp // 10**9, nanosec=stamp % 10**9),
                                         frame_id=frame_id)

    def _image(self, stamp: int, array: np.ndarray, encoding: str) -> Any:
        h, w = array.shape[:2]
        if encoding == "rgb8":
            data, step = np.ascontiguousarray(array, dtype=np.uint8).reshape(-1), w * 3
        else:  # 16UC1, little-endian as on every ROS host
            data, step = np.ascontiguousarray(array, dtype="<u2").view(np.uint8).reshape(-1), w * 2
        return self.ts.types["sensor_msgs/msg/Image"](header=self._header(stamp, CAMERA_FRAME), height=h, width=w,
                                                       encoding=encoding, is_bigendian=0, step=step, data=data)

    def camera_info(self, stamp: int) -> Any:
        t, k = self.ts.types, self.intrinsics
        return t["sensor_msgs/msg/CameraInfo"](
            header=self._header(stamp, CAMERA_FRAME), height=k.height, width=k.width, distortion_model="plumb_bob",
            d=np.zeros(5), k=k.K.reshape(-1),
            r=np.eye(3).reshape(-1),
            p=np.array([k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0]),
            binning_x=0, binning_y=0,
            roi=t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
        )

    def write_objects(self, stamp: int, objects: list[dict[str, Any]]) -> None:
        self._write(TOPIC_OBJECTS, stamp, self.ts.types["std_msgs/msg/String"](data=json.dumps(objects, separators=(",", ":"))))

    def write_frame(self, stamp: int, frame: Frame) -> None:
        t = self.ts.types
        self._write(TOPIC_IMAGE, stamp, self._image(stamp, frame.rgb, "rgb8"))
        self._write(TOPIC_CAMERA_INFO, stamp, self.camera_info(stamp))
        self._write(TOPIC_DEPTH, stamp, self._image(stamp, depth_millimetres(frame.depth), "16UC1"))
        pose = frame.world_from_camera
        x, y, z, w = quaternion_xyzw(pose[:3, :3])
        position = pose[:3, 3]
        pose_msg = t["geometry_msgs/msg/Pose"](
            position=t["geometry_msgs/msg/Point"](x=float(position[0]), y=float(position[1]), z=float(position[2])),
            orientation=t["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w))
        pose_stamped = t["geometry_msgs/msg/PoseStamped"](header=self._header(stamp, WORLD_FRAME), pose=pose_msg)
        self._write(TOPIC_POSE, stamp, pose_stamped)
        transform = t["geometry_msgs/msg/TransformStamped"](
            header=self._header(stamp, WORLD_FRAME), child_frame_id=CAMERA_FRAME,
            transform=t["geometry_msgs/msg/Transform"](
                translation=t["geometry_msgs/msg/Vector3"](x=float(position[0]), y=float(position[1]), z=float(position[2])),
                rotation=t["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w)))
        self._write(TOPIC_TF, stamp, t["tf2_msgs/msg/TFMessage"](transforms=[transform]))
        self._write(TOPIC_INSTANCES, stamp, self._image(stamp, frame.ids.astype(np.uint16), "16UC1"))


def depth_millimetres(depth: np.ndarray) -> np.ndarray:
    """Metres (float) to millimetres (uint16, 0 = no reading), as RGB-D cameras report depth."""
    return np.clip(np.round(depth * 1000.0), 0, 65535).astype(np.uint16)
