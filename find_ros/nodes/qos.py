"""Quality-of-service profiles, in one place so every publisher and subscriber agree.

Instructions are commands: reliable, and kept by the sender (transient local) so a node that starts
later still gets the latest one. A transient-local subscription would refuse volatile senders
(`ros2 topic pub` by default), a volatile one would never see the sender's history, so the nodes
subscribe with both and drop the copy (find_ros.nodes.any_durability).

``READY`` is the latched profile of each node's ``~/ready``: a late subscriber gets the current value.
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

INSTRUCTION_PUBLISHER = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
ANY_DURABILITY = tuple(
    QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=durability)
    for durability in (DurabilityPolicy.TRANSIENT_LOCAL, DurabilityPolicy.VOLATILE)
)
READY = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


# Answers to instructions (find_ros_msgs/InstructionStatus): reliable, so a sender waiting for the
# answer to its instruction gets it; deep enough that a burst of refusals reaches a slow reader.
INSTRUCTION_STATUS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=100,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)


def image_qos_for(node: object, topic: str, reliability: str = "auto") -> QoSProfile:
    """Depth-1 image QoS that copies the reliability of the publishers already on ``topic``.

    ``reliability`` "reliable" or "best_effort" (the nodes' ``image_reliability`` parameter) fixes it
    instead: a reliable camera started after the node then still gets a reliable subscription.

    Any best-effort publisher makes the subscription best-effort (a reliable subscription would never
    match it: the most common "no detections arrive" failure of ROS perception nodes). All-reliable
    publishers get a reliable subscription. With no publisher yet, the sensor-data profile
    (best-effort) is used, which matches either kind.
    """
    if reliability == "auto":
        publishers = node.get_publishers_info_by_topic(topic)  # type: ignore[attr-defined]
        reliable = bool(publishers) and all(
            info.qos_profile.reliability == ReliabilityPolicy.RELIABLE for info in publishers
        )
    else:
        reliable = reliability == "reliable"
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.VOLATILE,
    )
