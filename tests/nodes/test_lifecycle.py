"""Lifecycle: the model is loaded on activate and freed on deactivate, and a second activation works."""

from __future__ import annotations

import pytest
import rclpy
from find_ros_msgs.msg import Grounding
from lifecycle_msgs.msg import State
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

from find_ros.image_io import encode_jpeg
from find_ros.memory import EmbeddingMemory
from find_ros.nodes.bad_input import png_bomb
from find_ros.nodes.grounding_node import GroundingNode
from find_ros.nodes.localization_node import LocalizationNode
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


def test_a_loaded_memory_whose_picture_is_a_bomb_is_ranked_by_embedding_and_reported(tiny_model_dir, tmp_path) -> None:
    """A memory directory can hold any bytes as a frame's picture; one that declares 12000x12000 is
    refused from its header when a query re-ranks it (the other frames are grounded as usual)."""
    from find_ros_msgs.srv import Localize

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = LocalizationNode(context=context, parameter_overrides=[Parameter("model", value=str(tiny_model_dir))])
        node.trigger_configure()
        node.trigger_activate()
        engine = node.engine
        memory = EmbeddingMemory(node.memory.settings)
        for i in range(3):
            rgb = frame(i)
            memory.add(engine.frame_vector(engine.encode_frame(rgb)), stamp_ns=i, name="camera",
                       payload=png_bomb() if i == 0 else encode_jpeg(rgb))
        node.memory = EmbeddingMemory.load(memory.save(tmp_path / "memory"))
        assert node.memory.payload(0) == png_bomb()

        request = Localize.Request(instruction=build_instruction("[a green cone]", instruction_id="q"))
        request.instruction.top_k = 3
        response = node._on_localize(request, Localize.Response())  # noqa: SLF001 - what the service calls
        assert response.success, response.message
        stamps = [m.stamp.nanosec for m in response.result.matches]
        assert sorted(stamps) == [0, 1, 2] and stamps[-1] == 0  # the bomb's frame ranks after the grounded ones
        assert "remembered frame 0 is ranked by its embedding alone" in node.counters.last_error
        assert "12000x12000" in node.counters.last_error
        # A frame region in the bomb's frame: refused with what it costs that lookup, not a ranking.
        assert node.lookup_frame(0) is None
        assert "remembered frame 0 cannot give a frame region its pixels" in node.counters.last_error
        assert node.lookup_frame(1).shape == frame(1).shape
    finally:
        rclpy.shutdown(context=context)
