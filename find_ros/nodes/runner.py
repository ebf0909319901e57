"""Run lifecycle nodes in one process: what `find-ros perception` and the node entry points use.

Nodes take their parameters from the ROS arguments (``--ros-args --params-file FILE``), so the same
config/perception.yaml drives this runner and `ros2 launch find_ros perception.launch.py`. With
``autostart`` each node is configured and activated, as the launch file does through lifecycle events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor


def start_nodes(factories: Sequence[Callable[..., Any]], context: Any, autostart: bool = True) -> list[Any]:
    """Create the nodes in ``context`` and, with autostart, bring each to the active state."""
    from lifecycle_msgs.msg import State

    nodes = [factory(context=context) for factory in factories]
    if autostart:
        for node in nodes:
            node.trigger_configure()
            node.trigger_activate()
            if node._state_machine.current_state[0] != State.PRIMARY_STATE_ACTIVE:  # noqa: SLF001
                raise RuntimeError(f"{node.get_name()} did not reach the active state; see its log")
    return nodes


def spin_nodes(
    factories: Sequence[Callable[..., Any]],
    args: Sequence[str] | None = None,
    autostart: bool = True,
    params_file: str | None = None,
) -> None:
    """Start the nodes and spin them on a multi-threaded executor until Ctrl-C."""
    ros_args = list(args) if args is not None else None
    if params_file:
        ros_args = (ros_args or []) + ["--ros-args", "--params-file", params_file]
    context = rclpy.Context()
    rclpy.init(args=ros_args, context=context)
    nodes: list[Any] = []
    try:
        nodes = start_nodes(factories, context, autostart)
        executor = MultiThreadedExecutor(num_threads=4, context=context)
        for node in nodes:
            executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=context)
