"""A real rosbag2 file written with rosbags is played by one process and received by a node in another."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from rosbags.rosbag2 import Writer
from rosbags.typesys import Stores, get_typestore

from find_ros.nodes.bag_player import bag_topics

TYPESTORE = get_typestore(Stores.ROS2_KILTED)


def _write_bag(path, frames: list[np.ndarray], period_ns: int = 50_000_000) -> None:
    Image = TYPESTORE.types["sensor_msgs/msg/Image"]
    Header = TYPESTORE.types["std_msgs/msg/Header"]
    Time = TYPESTORE.types["builtin_interfaces/msg/Time"]
    with Writer(path, version=9) as writer:
        conn = writer.add_connection("/camera/image", Image.__msgtype__, typestore=TYPESTORE)
        for i, frame in enumerate(frames):
            stamp = 1_000_000_000 + i * period_ns
            msg = Image(
                header=Header(stamp=Time(sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id="cam"),
                height=frame.shape[0], width=frame.shape[1], encoding="rgb8", is_bigendian=0,
                step=frame.shape[1] * 3, data=frame.reshape(-1),
            )
            writer.write(conn, stamp, TYPESTORE.serialize_cdr(msg, Image.__msgtype__))


def test_bag_topics_lists_types_and_counts(tmp_path) -> None:
    _write_bag(tmp_path / "bag", [np.zeros((2, 3, 3), np.uint8)] * 4)
    assert bag_topics(tmp_path / "bag") == {"/camera/image": ("sensor_msgs/msg/Image", 4)}


@pytest.mark.timeout(120)
def test_played_frames_arrive_in_another_process_with_their_stamps(tmp_path) -> None:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from find_ros.nodes.images import image_msg_to_rgb

    rng = np.random.default_rng(5)
    frames = [rng.integers(0, 256, (4, 6, 3), dtype=np.uint8) for _ in range(5)]
    _write_bag(tmp_path / "bag", frames)

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("receiver", context=context)
        received: list[Image] = []
        # Reliable both ways (--reliable): every one of the five frames must arrive, not most of them.
        node.create_subscription(Image, "/camera/image", received.append, QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        player = subprocess.Popen(
            [sys.executable, "-m", "find_ros.cli", "play", str(tmp_path / "bag"), "--wait", "1", "--rate", "1", "--reliable"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + 60  # a failure guard: the player waits for every acknowledgement
        while len(received) < 5 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        output = player.communicate(timeout=30)[0]
    finally:
        rclpy.shutdown(context=context)
    assert player.returncode == 0, output
    assert "published 5" in output
    stamps = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in received]
    assert stamps == [1_000_000_000 + i * 50_000_000 for i in range(5)]
    assert all(np.array_equal(image_msg_to_rgb(m), f) for m, f in zip(received, frames))


def test_missing_bag_is_a_clear_error(tmp_path) -> None:
    out = subprocess.run([sys.executable, "-m", "find_ros.cli", "play", str(tmp_path / "nope")], capture_output=True, text=True)
    assert out.returncode == 2 and "bag not found" in out.stderr
