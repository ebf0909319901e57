"""The localization node in its own process: a bounded frame memory answering Localize requests."""

from __future__ import annotations

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from find_ros_msgs.msg import Localization
from find_ros_msgs.srv import Localize
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from find_ros.nodes.images import numpy_to_image_msg
from find_ros.nodes.instruction_msgs import FrameRegion, build_instruction
from find_ros.nodes.qos import INSTRUCTION_PUBLISHER

from .conftest import diagnostics_text, frame

pytestmark = pytest.mark.timeout(180)


def test_remembered_frames_answer_queries_with_top_k_and_the_best_frame_grounded(peer, perception) -> None:
    process = perception("localization", keyframe_interval_s=0.0, memory_capacity=5, top_k=3)
    diags = peer.collect(DiagnosticArray, "/diagnostics")
    assert peer.spin_until(lambda: "state=active" in diagnostics_text(diags) or process.poll() is not None, 60)
    assert process.poll() is None
    camera = peer.node.create_publisher(Image, "/camera/color/image_raw", qos_profile_sensor_data)
    assert peer.spin_until(lambda: camera.get_subscription_count() > 0, 20)

    stamps = []
    for i in range(8):  # more than the memory holds: the oldest three must be gone
        msg = numpy_to_image_msg(frame(100 + i), "rgb8")
        msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + i, 0
        msg.header.frame_id = "camera"
        camera.publish(msg)
        stamps.append(1000 + i)
        assert peer.spin_until(lambda: f"frames_processed={i + 1}" in diagnostics_text(diags[-3:]), 30)

    # The memory says how full it is and which search it uses (exact below its exact_limit).
    assert peer.spin_until(lambda: "memory_entries=5" in diagnostics_text(diags[-3:]) and "memory_index=exact" in diagnostics_text(diags[-3:]), 30)

    client = peer.node.create_client(Localize, "/find_localization/localize")
    assert client.wait_for_service(timeout_sec=20)

    def localize(instruction):
        future = client.call_async(Localize.Request(instruction=instruction))
        assert peer.spin_until(future.done, 60)
        return future.result()

    answer = localize(build_instruction("[a red sphere] near <0>", [frame(3, 20, 20)], instruction_id="q1", want_localization=True))
    assert answer.success, answer.message
    result = answer.result
    assert result.instruction_id == "q1" and len(result.matches) == 3
    scores = [m.score for m in result.matches]
    assert scores == sorted(scores, reverse=True)
    assert {m.stamp.sec for m in result.matches} <= set(stamps[-5:])  # evicted frames never come back
    assert result.best_frame.header.stamp == result.matches[0].stamp
    assert [e.label for e in result.best_frame.entities] == ["a red sphere", "<0>"]
    assert result.best_frame.entities[0].mask.width == 80

    # A visual entity given as a box in a remembered frame is cut from that frame.
    region = build_instruction("<0>", [FrameRegion(1007 * 10**9, (10, 10, 40, 30))], instruction_id="q2", want_localization=True)
    assert localize(region).success
    forgotten = build_instruction("<0>", [FrameRegion(1001 * 10**9, (10, 10, 40, 30))], instruction_id="q3", want_localization=True)
    answer = localize(forgotten)
    assert not answer.success and "no remembered frame" in answer.message

    # The topic path: an instruction with want_localization is answered on the localization topic.
    answers = peer.collect(Localization, "/find_ros/localization")
    publisher = peer.node.create_publisher(type(region), "/find_ros/instruction", INSTRUCTION_PUBLISHER)
    assert peer.spin_until(lambda: publisher.get_subscription_count() > 0, 20)
    publisher.publish(build_instruction("[a box]", instruction_id="q4", want_localization=True, top_k=2))
    assert peer.spin_until(lambda: any(a.instruction_id == "q4" for a in answers), 60)
    assert len(next(a for a in answers if a.instruction_id == "q4").matches) == 2
