"""An Instruction with two image crops crosses real DDS from this process to a node in another."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from find_ros.nodes.images import image_msg_to_rgb
from find_ros.nodes.instruction_msgs import FrameRegion, build_instruction, read_instruction
from find_ros.nodes.qos import INSTRUCTION_PUBLISHER
from find_ros.nodes.topic_tools import publish_when_matched


@pytest.mark.timeout(120)
def test_instruction_with_two_crops_arrives_intact_in_another_process(tmp_path) -> None:
    from rclpy.serialization import deserialize_message
    from find_ros_msgs.msg import Instruction

    rng = np.random.default_rng(7)
    crops = [rng.integers(0, 256, (37, 53, 3), dtype=np.uint8), rng.integers(0, 256, (64, 31, 3), dtype=np.uint8)]
    sent = build_instruction(
        "[the blue cup] between <0> and <1>",
        crops,
        instruction_id="inst-42",
        frame_id="camera_optical",
        want_grounding=True,
        want_localization=True,
        top_k=3,
    )
    sent.header.stamp.sec, sent.header.stamp.nanosec = 1700000000, 123456789

    saved = tmp_path / "received.cdr"
    topic = "/test/instruction"
    receiver = subprocess.Popen(
        [sys.executable, "-m", "find_ros.cli", "echo", topic, "--save", str(saved), "--timeout", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        matched = publish_when_matched(topic, sent, INSTRUCTION_PUBLISHER, timeout_s=60)
        output, _ = receiver.communicate(timeout=90)
    finally:
        receiver.kill()
    assert matched == 1
    assert receiver.returncode == 0, output
    assert "inst-42" in output

    received = deserialize_message(saved.read_bytes(), Instruction)
    assert received == sent  # every field, generated __eq__ compares them all
    assert received.header.frame_id == "camera_optical"
    assert (received.header.stamp.sec, received.header.stamp.nanosec) == (1700000000, 123456789)
    assert received.want_grounding and received.want_localization and received.top_k == 3
    parsed, visuals = read_instruction(received)
    assert [e.label for e in parsed.entities] == ["the blue cup", "<0>", "<1>"]
    assert len(visuals) == 2
    for got, want in zip(visuals, crops):
        assert got.shape == want.shape and np.array_equal(got, want)


def test_frame_region_entities_round_trip_through_the_message() -> None:
    crop = np.zeros((4, 5, 3), np.uint8)
    msg = build_instruction("<0> next to <1>", [crop, FrameRegion(3_000_000_123, (10, 20, 50, 80))])
    _, visuals = read_instruction(msg)
    assert isinstance(visuals[1], FrameRegion)
    assert visuals[1] == FrameRegion(3_000_000_123, (10, 20, 50, 80))
    assert image_msg_to_rgb(msg.visual_entities[0].crop).shape == (4, 5, 3)


def test_malformed_instruction_never_leaves_the_sender() -> None:
    with pytest.raises(ValueError, match="placeholder <1> has no visual entity"):
        build_instruction("the cup near <1>", [np.zeros((2, 2, 3), np.uint8)])
