"""Image subscriptions copy the publisher's reliability, so best-effort cameras are received."""

from __future__ import annotations

import time

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image

from find_ros.nodes.images import image_msg_to_rgb, numpy_to_image_msg
from find_ros.nodes.qos import image_qos_for


@pytest.fixture()
def context():
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.shutdown(context=ctx)


def _wait_for_publisher(node, topic: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not node.get_publishers_info_by_topic(topic):
        assert time.monotonic() < deadline, f"publisher on {topic} never discovered"
        time.sleep(0.05)


@pytest.mark.parametrize(
    "publisher_qos, expected",
    [(qos_profile_sensor_data, ReliabilityPolicy.BEST_EFFORT), (QoSProfile(depth=5), ReliabilityPolicy.RELIABLE)],
)
def test_subscription_follows_the_publisher_and_receives_frames(context, publisher_qos, expected) -> None:
    topic = f"/test/camera_{expected.name.lower()}"
    camera = rclpy.create_node("camera", context=context)
    listener = rclpy.create_node("listener", context=context)
    publisher = camera.create_publisher(Image, topic, publisher_qos)
    _wait_for_publisher(listener, topic)
    qos = image_qos_for(listener, topic)
    assert qos.reliability == expected and qos.depth == 1

    received: list[Image] = []
    listener.create_subscription(Image, topic, received.append, qos)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(camera)
    executor.add_node(listener)
    frame = np.random.default_rng(1).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    deadline = time.monotonic() + 15
    while not received and time.monotonic() < deadline:
        publisher.publish(numpy_to_image_msg(frame, "rgb8"))
        executor.spin_once(timeout_sec=0.05)
    assert received, "no frame arrived"
    assert np.array_equal(image_msg_to_rgb(received[-1]), frame)


def test_no_publisher_yet_falls_back_to_best_effort(context) -> None:
    node = rclpy.create_node("lonely", context=context)
    assert image_qos_for(node, "/nobody/here").reliability == ReliabilityPolicy.BEST_EFFORT
