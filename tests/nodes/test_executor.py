"""The nodes' executor (find_ros.nodes.runner.PerceptionExecutor): mutually exclusive callbacks run on
the spinning thread, reentrant ones on its pool, so a slow reentrant callback (a transition that loads
a model, a localization query) never holds up frames and timers. Real rclpy, no DDS traffic needed:
timers are the callbacks, and every wait is on an event, never on a duration."""

from __future__ import annotations

import threading

import pytest
import rclpy
from rclpy.callback_groups import ReentrantCallbackGroup

from find_ros.nodes.runner import executor_for

WAIT_S = 60.0


@pytest.fixture()
def node_and_executor():
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("executor_probe", context=context)
    executor = executor_for([node], context)
    yield node, executor
    executor.shutdown(timeout_sec=10)
    node.destroy_node()
    rclpy.shutdown(context=context)


def test_a_blocked_reentrant_callback_does_not_hold_up_the_others(node_and_executor) -> None:
    node, executor = node_and_executor
    gate = threading.Event()
    slow_started, quick_served = threading.Event(), threading.Event()
    threads: dict[str, int] = {}

    def slow() -> None:
        if "slow" in threads:
            return
        threads["slow"] = threading.get_ident()
        slow_started.set()
        gate.wait(WAIT_S)  # stands for a model load: it holds its thread until the test opens the gate

    def quick() -> None:
        if slow_started.is_set():
            threads["quick"] = threading.get_ident()
            quick_served.set()

    node.create_timer(0.01, slow, callback_group=ReentrantCallbackGroup())
    node.create_timer(0.01, quick)  # the node's default group: mutually exclusive
    spinning = threading.Thread(target=executor.spin, daemon=True)
    spinning.start()
    try:
        assert slow_started.wait(WAIT_S)
        assert quick_served.wait(WAIT_S), "the default group's timer was not served while a reentrant callback blocked"
        assert not gate.is_set()
        assert threads["quick"] == spinning.ident  # inline: no hand-off to a pool thread
        assert threads["slow"] != spinning.ident
    finally:
        gate.set()


def test_an_exception_in_an_inline_callback_ends_the_spin(node_and_executor) -> None:
    node, executor = node_and_executor

    def failing() -> None:
        raise RuntimeError("callback failed")

    node.create_timer(0.01, failing)
    with pytest.raises(RuntimeError, match="callback failed"):
        for _ in range(1000):  # the executor's own wake-ups may come first
            executor.spin_once(timeout_sec=WAIT_S)
