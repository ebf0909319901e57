"""diagnostic_msgs/DiagnosticArray on /diagnostics: how a node is doing, and why it rejected input."""

from __future__ import annotations

from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
TOPIC = "/diagnostics"  # the ROS convention: one topic for every node's health


def diagnostic_array(node: Any, level: bytes | int, message: str, values: dict[str, Any], hardware_id: str = "") -> DiagnosticArray:
    status = DiagnosticStatus()
    status.level = level if isinstance(level, bytes) else bytes([level])
    status.name = f"{node.get_name()}"
    status.message = message[:1000]  # a 100 kB instruction must not come back whole in a diagnostic
    status.hardware_id = hardware_id
    status.values = [KeyValue(key=k, value=str(v)[:200]) for k, v in values.items()]
    array = DiagnosticArray()
    array.header.stamp = node.get_clock().now().to_msg()
    array.status = [status]
    return array
