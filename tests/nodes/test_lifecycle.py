"""Lifecycle: the model is loaded on activate and freed on deactivate, and a second activation works."""

from __future__ import annotations

import pytest
import rclpy
from find_ros_msgs.msg import Grounding
from lifecycle_msgs.msg import State
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

from find_ros.nodes.grounding_node import GroundingNode
from find_ros.nodes.images import numpy_to_image_msg
from find_ros.nodes.instruction_msgs import build_instruction

from .conftest import frame

pytestmark = pytest.mark.timeout(180)


def _state(node) -> int:
    return node._state_machine.current_state[0]  # noqa: SLF001 - rclpy exposes no public getter


def test_configure_activate_deactivate_activate(tiny_model_dir) -> None:
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = GroundingNode(context=context, parameter_overrides=[Parameter("model", value=str(tiny_model_dir))])
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        results: list[Grounding] = []
        node.create_subscription(Grounding, "/find_ros/grounding", results.append, 10)
        assert node.accept(build_instruction("[a green cone]", instruction_id="cone"))[0]  # accepted while unconfigured

        node.trigger_configure()
        assert _state(node) == State.PRIMARY_STATE_INACTIVE and node.engine is None
        for cycle in range(2):
            node.trigger_activate()
            assert _state(node) == State.PRIMARY_STATE_ACTIVE and node.engine is not None
            before = len(results)
            node._on_image(numpy_to_image_msg(frame(cycle), "rgb8"))  # noqa: SLF001 - what the subscription calls
            for _ in range(400):
                executor.spin_once(timeout_sec=0.05)
                if len(results) > before:
                    break
            assert len(results) == before + 1, f"no result in cycle {cycle}"
            node.trigger_deactivate()
            assert _state(node) == State.PRIMARY_STATE_INACTIVE
            assert node.engine is None and node._worker is None  # noqa: SLF001 - model and thread freed
        node.trigger_cleanup()
        assert _state(node) == State.PRIMARY_STATE_UNCONFIGURED
    finally:
        rclpy.shutdown(context=context)


def test_a_model_that_does_not_load_fails_the_transition_and_the_node_survives(tmp_path) -> None:
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = GroundingNode(context=context, parameter_overrides=[Parameter("model", value=str(tmp_path / "missing"))])
        node.trigger_configure()
        node.trigger_activate()
        assert _state(node) == State.PRIMARY_STATE_INACTIVE
        assert "model failed to load" in node.counters.last_error and "missing" in node.counters.last_error
    finally:
        rclpy.shutdown(context=context)
