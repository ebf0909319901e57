"""Play a rosbag2 file onto live topics: `ros2 bag play` for machines without rosbag2's CLI.

The bag is read with the rosbags library; each message's CDR bytes are published as they are (rclpy
publishes serialized messages), so any message type whose Python package is installed plays without
conversion. Timing follows the bag's receive timestamps scaled by ``rate``. With ``restamp`` the
header stamps are replaced by the current time (as a live camera would stamp them), which is what
latency measurements need; the original stamp is reported to ``on_publish`` either way. With
``namespace`` every topic is published under it (``/camera/color/image_raw`` -> ``/front/camera/...``)
and with ``frame_id`` every header's frame id is replaced, so one bag can stand in for another camera.

Asked for no topics in particular, it plays every topic whose message type is installed and skips
the others with a note (a camera bag often carries /tf, whose tf2_msgs a PyPI set-up lacks); a topic
asked for by name must be playable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from rclpy.duration import Duration
from rclpy.qos import QoSProfile, qos_profile_sensor_data

from find_ros.nodes.topic_tools import message_type

# (topic, original header stamp in ns or None, wall time of publish)
PublishCallback = Callable[[str, int | None, float], None]
# (topic, message type, why it cannot be published)
SkipCallback = Callable[[str, str, str], None]


def bag_topics(path: str | Path) -> dict[str, tuple[str, int]]:
    """topic -> (message type, message count) of a bag."""
    from rosbags.rosbag2 import Reader

    with Reader(_checked(path)) as reader:
        return {c.topic: (c.msgtype, c.msgcount) for c in reader.connections}


def play_bag(
    node: Any,
    path: str | Path,
    *,
    rate: float = 1.0,
    topics: Iterable[str] | None = None,
    qos: QoSProfile = qos_profile_sensor_data,
    restamp: bool = False,
    on_publish: PublishCallback | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    wait_for_subscribers: int = 0,
    wait_timeout_s: float = 30.0,
    on_skip: SkipCallback | None = None,
    ack_timeout_s: float = 10.0,
    namespace: str = "",
    frame_id: str | None = None,
) -> int:
    """Publish the bag's messages through ``node``; returns how many were published.

    With ``wait_for_subscribers`` > 0, playing starts once every played topic has that many
    subscribers, so a receiver started at the same time misses nothing; with reliable ``qos`` the
    call returns once every subscriber acknowledged every message (or ``ack_timeout_s`` passed).
    """
    from rclpy.serialization import deserialize_message, serialize_message
    from rosbags.rosbag2 import Reader

    from find_ros.nodes.cameras import join

    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    wanted = set(topics) if topics is not None else None
    published = 0
    with Reader(_checked(path)) as reader:
        connections = [c for c in reader.connections if wanted is None or c.topic in wanted]
        if wanted is not None and not connections:
            raise ValueError(f"{path}: none of the topics {sorted(wanted)} is in the bag")
        types: dict[str, type] = {}
        for connection in connections:
            try:
                types[connection.topic] = message_type(connection.msgtype)
            except ValueError as error:
                if wanted is not None:
                    raise
                if on_skip is not None:
                    on_skip(connection.topic, connection.msgtype, str(error))
        connections = [c for c in connections if c.topic in types]
        if not connections:
            raise ValueError(f"{path}: no topic of the bag has a message type installed here")
        publishers = {topic: node.create_publisher(cls, join(namespace, topic) if namespace else topic, qos)
                      for topic, cls in types.items()}
        deadline = time.monotonic() + wait_timeout_s
        while any(p.get_subscription_count() < wait_for_subscribers for p in publishers.values()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {wait_for_subscribers} subscriber(s) after {wait_timeout_s:.0f} s")
            time.sleep(0.05)
        first_bag_ns: int | None = None
        start = time.monotonic()
        for connection, bag_ns, raw in reader.messages(connections=connections):
            if should_stop():
                break
            first_bag_ns = bag_ns if first_bag_ns is None else first_bag_ns
            delay = (bag_ns - first_bag_ns) / 1e9 / rate - (time.monotonic() - start)
            if delay > 0:
                time.sleep(delay)
            topic = connection.topic
            msg_class = types[topic]
            data: Any = bytes(raw)
            original_stamp = None
            if "header" in msg_class.get_fields_and_field_types():
                msg = deserialize_message(data, msg_class)
                original_stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
                if restamp:
                    msg.header.stamp = node.get_clock().now().to_msg()
                if frame_id is not None:
                    msg.header.frame_id = frame_id
                if restamp or frame_id is not None:
                    data = serialize_message(msg)
            publishers[topic].publish(data)
            published += 1
            if on_publish is not None:
                on_publish(topic, original_stamp, time.time())
    # Reliable samples still unacknowledged would be lost with the node; best effort returns at once.
    for publisher in publishers.values():
        publisher.wait_for_all_acked(Duration(seconds=ack_timeout_s))
    return published


def _checked(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"bag not found: {path}")
    return path
