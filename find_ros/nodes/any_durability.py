"""Receive a topic from transient-local and volatile senders alike, each sample once.

A transient-local sender's history reaches a node that subscribes later only through a
transient-local subscription, which DDS never matches with a volatile sender. So two subscriptions
are made, one per durability. A transient-local sender matches both, and each of its samples
arrives twice; the copy is recognised by the sample's identity (publisher GID and publication
sequence number, from the message info) and dropped.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from rclpy.qos import DurabilityPolicy

from find_ros.nodes.qos import ANY_DURABILITY

SEEN_SAMPLES = 256  # identities remembered; a copy arrives right after its original


class _OncePerSample:
    def __init__(self, callback: Callable[[Any, Any], None]) -> None:
        self._callback = callback
        self._seen: OrderedDict[tuple[bytes, int], None] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, msg: Any, info: Any) -> None:
        gid, sequence = info.get("publisher_gid"), info.get("publication_sequence_number")
        if gid is not None and sequence is not None:
            identity = (bytes(gid.get("data", b"")), int(sequence))
            with self._lock:
                if identity in self._seen:
                    return
                self._seen[identity] = None
                while len(self._seen) > SEEN_SAMPLES:
                    self._seen.popitem(last=False)
        self._callback(msg, info)


def subscribe_any_durability(node: Any, msg_type: type, topic: str, callback: Callable[[Any, Any], None]) -> list[Any]:
    """Subscribe ``callback(msg, info)`` to ``topic`` in both durabilities, ``info`` being rclpy's
    message info (the sender's publisher GID among it); returns the subscriptions."""
    from rclpy.event_handler import SubscriptionEventCallbacks

    once = _OncePerSample(callback)
    # A volatile sender is "incompatible" with the transient-local subscription by design (the
    # volatile one serves it), so that subscription does not warn about it.
    quiet = SubscriptionEventCallbacks(incompatible_qos=lambda event: None)
    return [
        node.create_subscription(msg_type, topic, once, qos, event_callbacks=quiet if qos.durability == DurabilityPolicy.TRANSIENT_LOCAL else None)
        for qos in ANY_DURABILITY
    ]
