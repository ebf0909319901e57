"""Publish or receive one message with a short-lived node: `ros2 topic pub/echo --once` for machines
without ros2cli (it is not on PyPI), used by `find-ros instruct` / `find-ros echo` and the tests.

They join whatever graph the caller's environment names (ROS_DOMAIN_ID, discovery range, RMW), as
ros2cli does; keeping DDS on this machine is the caller's choice (find_ros.ros_env.isolate_dds).
"""

from __future__ import annotations

import importlib
import time
from typing import Any

from rclpy.qos import QoSProfile


def message_type(name: str) -> type:
    """'pkg/msg/Type' or 'pkg/Type' -> the message class."""
    parts = name.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"message type {name!r} is not of the form pkg/msg/Type")
    try:
        return getattr(importlib.import_module(f"{parts[0]}.{parts[1]}"), parts[2])
    except (ImportError, AttributeError) as error:
        raise ValueError(f"unknown message type {name!r}: {error}") from error


def publish_when_matched(
    topic: str,
    msg: Any,
    qos: QoSProfile,
    *,
    wait_for_subscribers: int = 1,
    timeout_s: float = 30.0,
    linger_s: float = 1.0,
) -> int:
    """Publish ``msg`` once ``wait_for_subscribers`` nodes subscribe to ``topic`` and every
    subscription seen is matched; returns how many nodes subscribe. (A find_ros node subscribes
    with two durabilities, find_ros.nodes.any_durability, so readers are counted per node.)"""
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("find_ros_publisher", context=context)
        publisher = node.create_publisher(type(msg), topic, qos)

        def subscribing_nodes() -> int:
            readers = node.get_subscriptions_info_by_topic(topic)
            if publisher.get_subscription_count() < len(readers):
                return 0  # discovered, not matched yet
            return len({(info.node_namespace, info.node_name) for info in readers})

        deadline = time.monotonic() + timeout_s
        while (nodes := subscribing_nodes()) < wait_for_subscribers:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no subscriber on {topic} after {timeout_s:.0f} s ({nodes}/{wait_for_subscribers} nodes matched)"
                )
            time.sleep(0.05)
        publisher.publish(msg)
        # Reliable delivery completes asynchronously; stay until every reader acknowledged it.
        publisher.wait_for_all_acked(rclpy.duration.Duration(seconds=linger_s))
        return nodes
    finally:
        rclpy.shutdown(context=context)


def receive_one(topic: str, msg_type: type, *, timeout_s: float = 30.0) -> Any:
    """Wait for one message on ``topic`` and return it: from volatile and transient-local (latched)
    reliable senders alike, so a latched value such as a node's ``~/ready`` is shown at once."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from find_ros.nodes.any_durability import subscribe_any_durability

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("find_ros_echo", context=context)
        received: list[Any] = []
        subscribe_any_durability(node, msg_type, topic, lambda msg, _info: received.append(msg))
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + timeout_s
        while not received:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no message on {topic} within {timeout_s:.0f} s")
            executor.spin_once(timeout_sec=0.1)
        return received[0]
    finally:
        rclpy.shutdown(context=context)
