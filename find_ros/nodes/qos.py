"""Quality-of-service profiles, in one place so every publisher and subscriber agree.

Instructions are commands: reliable, and kept by the sender (transient local) so a node that starts
later still gets the latest one. Receivers ask only for reliable/volatile, which matches any reliable
publisher (ros2 topic pub included); asking for transient local would refuse volatile senders.
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

INSTRUCTION_PUBLISHER = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
INSTRUCTION_SUBSCRIBER = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
