"""The grounding node in its own process, over real DDS: results per frame, bad input, lifecycle."""

from __future__ import annotations

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from find_ros_msgs.msg import Grounding, Instruction, VisualEntity
from find_ros_msgs.srv import SetInstruction
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from find_ros.nodes.images import image_msg_to_rgb, numpy_to_image_msg
from find_ros.nodes.instruction_msgs import build_instruction
from find_ros.nodes.qos import INSTRUCTION_PUBLISHER

from .conftest import diagnostics_text, frame

pytestmark = pytest.mark.timeout(180)


def _camera(peer, qos=qos_profile_sensor_data):
    """A best-effort camera (as most drivers are) whose published stamps are recorded."""
    publisher = peer.node.create_publisher(Image, "/camera/color/image_raw", qos)
    stamps: list[int] = []

    def publish(rgb: np.ndarray) -> None:
        msg = numpy_to_image_msg(rgb, "rgb8")
        msg.header.stamp = peer.node.get_clock().now().to_msg()
        msg.header.frame_id = "camera"
        stamps.append(msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)
        publisher.publish(msg)

    return publisher, publish, stamps


def _wait_for_node(peer, process, timeout_s: float = 60.0) -> None:
    """Until the node's diagnostics say it is active (the model loaded)."""
    diags = peer.collect(DiagnosticArray, "/diagnostics")
    ok = peer.spin_until(lambda: "state=active" in diagnostics_text(diags) or process.poll() is not None, timeout_s)
    assert ok and process.poll() is None, "perception process did not become active"


def test_a_best_effort_camera_and_an_instruction_with_a_crop_get_per_frame_results(peer, perception) -> None:
    process = perception("grounding")
    _wait_for_node(peer, process)
    results = peer.collect(Grounding, "/find_ros/grounding")
    overlays = peer.collect(Image, "/find_ros/overlay", qos_profile_sensor_data)
    instructions = peer.node.create_publisher(Instruction, "/find_ros/instruction", INSTRUCTION_PUBLISHER)
    peer.spin_until(lambda: instructions.get_subscription_count() > 0, 20)
    instructions.publish(build_instruction("[the red mug] left of <0>", [frame(99, 24, 30)], instruction_id="mug"))
    _, publish, stamps = _camera(peer)

    ticks = iter(range(10**6))
    assert peer.spin_until(lambda: len(results) >= 3, 90, step=lambda: next(ticks) % 4 == 0 and publish(frame(len(stamps))))
    for result in results:
        assert result.instruction_id == "mug"
        assert result.header.frame_id == "camera"
        assert result.header.stamp.sec * 10**9 + result.header.stamp.nanosec in stamps
        assert (result.image_width, result.image_height) == (80, 60)
        assert [e.label for e in result.entities] == ["the red mug", "<0>"]
        assert [e.visual_index for e in result.entities] == [-1, 0]
        for entity in result.entities:
            assert 0.0 <= entity.score <= 1.0
            mask = image_msg_to_rgb(entity.mask)[..., 0] if entity.mask.width else None
            assert mask is not None and mask.shape == (60, 80)
            assert int((mask == 255).sum()) == entity.mask_area
        assert result.timing.vision_ms > 0 and result.timing.interface_ms > 0
    assert peer.spin_until(lambda: bool(overlays), 10)
    assert (overlays[-1].width, overlays[-1].height) == (80, 60)


def _bad_instruction(text: str, crops: int = 0, instruction_id: str = "bad") -> Instruction:
    msg = Instruction(id=instruction_id, text=text, want_grounding=True)
    for k in range(crops):
        entity = VisualEntity(source=VisualEntity.SOURCE_CROP)
        entity.crop = numpy_to_image_msg(frame(k, 8, 8), "rgb8")
        msg.visual_entities.append(entity)
    return msg


def test_bad_input_is_rejected_with_a_reason_and_the_node_keeps_serving(peer, perception) -> None:
    process = perception("grounding", max_instructions=4)
    _wait_for_node(peer, process)
    diags = peer.collect(DiagnosticArray, "/diagnostics")
    results = peer.collect(Grounding, "/find_ros/grounding")
    client = peer.node.create_client(SetInstruction, "/find_grounding/set_instruction")
    assert client.wait_for_service(timeout_sec=20)

    def ask(msg: Instruction) -> SetInstruction.Response:
        future = client.call_async(SetInstruction.Request(instruction=msg))
        assert peer.spin_until(future.done, 30)
        return future.result()

    cases = {
        "placeholder without crop": (_bad_instruction("the cup near <1>", crops=1), "placeholder <1> has no visual entity"),
        "huge text": (_bad_instruction("x" * 100_000), "100000 characters"),
        "empty text": (_bad_instruction("   "), "empty"),
    }
    for name, (msg, reason) in cases.items():
        response = ask(msg)
        assert not response.accepted, name
        assert reason in response.message, (name, response.message)

    # An instruction flood: bounded, never a crash.
    flood = peer.node.create_publisher(Instruction, "/find_ros/instruction", INSTRUCTION_PUBLISHER)
    peer.spin_until(lambda: flood.get_subscription_count() > 0, 20)
    for i in range(200):
        flood.publish(build_instruction("[a cup]", instruction_id=f"flood-{i}"))
    peer.spin_until(lambda: flood.wait_for_all_acked(__import__("rclpy").duration.Duration(seconds=0.05)), 20)
    assert peer.spin_until(lambda: "instructions_active=4" in diagnostics_text(diags), 20)
    peer.spin_until(lambda: False, 1.0)  # let any flood sample still in the node's queue land first
    assert ask(build_instruction("[the blue box]", instruction_id="good")).accepted

    camera, publish, _ = _camera(peer)
    assert peer.spin_until(lambda: camera.get_subscription_count() > 0, 20)
    bad_frames = {
        "wrong encoding": dict(encoding="yuv422_yuy2"),
        "step/size mismatch": dict(step=7),
        "empty image": dict(height=0, width=0, data=b""),
    }
    for fields in bad_frames.values():
        msg = numpy_to_image_msg(frame(1), "rgb8")
        for key, value in fields.items():
            setattr(msg, key, value)
        camera.publish(msg)
        peer.spin_until(lambda: False, 0.3)

    text = lambda: diagnostics_text(diags)  # noqa: E731
    assert peer.spin_until(lambda: "frames_bad=3" in text(), 30), text()[-2000:]
    for reason in ("unsupported image encoding", "smaller than one row", "empty image"):
        assert reason in text()

    # Still serving: a good frame gets results for the newest instruction, and at most 4 are kept.
    ticks = iter(range(10**6))
    assert peer.spin_until(lambda: any(r.instruction_id == "good" for r in results), 60,
                           step=lambda: next(ticks) % 5 == 0 and publish(frame(5)))
    assert peer.spin_until(lambda: "instructions_active=4" in text(), 10)
    assert process.poll() is None
