"""Run lifecycle nodes in one process: what `find-ros perception` and the node executables use.

Nodes take their parameters from the ROS arguments (``--ros-args --params-file FILE``), so the same
config/perception.yaml drives this runner and `ros2 launch find_ros perception.launch.py`.

A node executable (`ros2 run find_ros grounding_node`, or the launch file) waits unconfigured for
`ros2 lifecycle set` unless its ``autostart`` parameter is true; the launch file's ``autostart``
argument sets that parameter. `find-ros perception` starts its nodes by default (``autostart=True``
here), as a one-process convenience. Starting runs on a thread of its own while the executor spins,
so the lifecycle services answer while the model loads (find_ros.nodes.base).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import rclpy
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import (
    ConditionReachedException,
    ExternalShutdownException,
    MultiThreadedExecutor,
    ShutdownException,
    TimeoutException,
)


def bring_up(node: Any) -> bool:
    """Configure, then activate ``node``; whether it became active (a failure is logged by the node)."""
    from lifecycle_msgs.msg import State

    node.trigger_configure()
    if node._state_machine.current_state[0] == State.PRIMARY_STATE_INACTIVE:  # noqa: SLF001 - no public getter
        node.trigger_activate()
    return node._state_machine.current_state[0] == State.PRIMARY_STATE_ACTIVE  # noqa: SLF001


class PerceptionExecutor(MultiThreadedExecutor):
    """Quick callbacks on the spinning thread, slow ones on a pool.

    Callbacks of a reentrant group (the nodes put there what may take seconds: the lifecycle
    services, whose on_activate loads the model, and the localization query) go to the pool, so
    ``get_state``, frames and instructions are served meanwhile. Every other callback belongs to a
    mutually exclusive group (camera frames, instructions, timers), whose callbacks never ran
    together anyway; they run inline, which spares each frame a hand-off to a pool thread and back.
    On the 2-core CPU that hand-off and its GIL traffic cost the model about 3 ms of a frame's
    vision and interface time at 30 Hz (benchmarks/perception.py, "other" 4.9 -> 1.7 ms).
    """

    def _spin_once_impl(self, timeout_sec: Any = None, wait_condition: Callable[[], bool] = lambda: False) -> None:
        try:
            handler, entity, _ = self.wait_for_ready_callbacks(timeout_sec, None, wait_condition)
        except (ExternalShutdownException, ShutdownException, TimeoutException, ConditionReachedException):
            return
        if isinstance(getattr(entity, "callback_group", None), ReentrantCallbackGroup):
            self._executor.submit(handler)
            self._futures.append(handler)
        else:
            handler()
            handler.result()  # as SingleThreadedExecutor: a callback's exception ends the spin
        for future in self._futures[:]:  # as MultiThreadedExecutor, for the pool's callbacks
            if future.done():
                self._futures.remove(future)
                future.result()


def executor_for(nodes: Sequence[Any], context: Any) -> PerceptionExecutor:
    """The executor the nodes run on (:class:`PerceptionExecutor`): the pool's threads serve
    transitions and queries while the spinning thread serves frames and instructions."""
    executor = PerceptionExecutor(num_threads=2, context=context)
    for node in nodes:
        executor.add_node(node)
    return executor


def spin_nodes(
    factories: Sequence[Callable[..., Any]],
    args: Sequence[str] | None = None,
    autostart: bool | None = None,
    params_file: str | None = None,
) -> None:
    """Create the nodes and spin them on a multi-threaded executor until Ctrl-C.

    ``autostart`` None leaves it to each node's ``autostart`` parameter; True or False decides for
    all. A node that was to start but did not reach the active state ends the process (exit 1).
    """
    ros_args = list(args) if args is not None else None
    if params_file:
        ros_args = (ros_args or []) + ["--ros-args", "--params-file", params_file]
    context = rclpy.Context()
    rclpy.init(args=ros_args, context=context)
    nodes: list[Any] = []
    failed: list[str] = []
    try:
        nodes = [factory(context=context) for factory in factories]
        executor = executor_for(nodes, context)
        starting = [node for node in nodes if (node.params.autostart if autostart is None else autostart)]

        def start_all() -> None:
            for node in starting:
                if not bring_up(node):
                    failed.append(node.get_name())
                    node.get_logger().error(f"autostart: {node.get_name()} did not reach the active state; see above")
                    executor.shutdown(timeout_sec=0)
                    return

        if starting:
            threading.Thread(target=start_all, name="find_ros_autostart", daemon=True).start()
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=context)
    if failed:
        raise SystemExit(1)
