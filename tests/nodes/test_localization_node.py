"""The localization node in its own process: a bounded frame memory answering Localize requests."""

from __future__ import annotations

import pytest
from find_ros_msgs.msg import Localization
from find_ros_msgs.srv import Localize
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from find_ros.nodes.graph_client import service_name
from find_ros.nodes.images import numpy_to_image_msg
from find_ros.nodes.instruction_msgs import FrameRegion, build_instruction
from find_ros.nodes.params import LocalizationParams

from .conftest import frame, wait_active

pytestmark = pytest.mark.timeout(180)

P = LocalizationParams()
LOCALIZE = service_name("find_localization", "localize")


def test_remembered_frames_answer_queries_with_top_k_and_the_best_frame_grounded(peer, perception) -> None:
    process = perception("localization", keyframe_interval_s=0.0, memory_capacity=5, top_k=3, image_reliability="reliable")
    wait_active(peer, process, "find_localization")
    camera = peer.node.create_publisher(Image, P.image_topic, QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    assert peer.spin_until(lambda: camera.get_subscription_count() > 0, 20)

    stamps = []
    for i in range(8):  # more than the memory holds: the oldest three must be gone
        msg = numpy_to_image_msg(frame(100 + i), "rgb8")
        msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + i, 0
        msg.header.frame_id = "camera"
        camera.publish(msg)
        stamps.append(1000 + i)
        assert peer.spin_until(lambda: peer.status["find_localization"].get("frames_processed") == str(i + 1), 30)

    # The memory says how full it is and which search it uses (exact below its exact_limit).
    assert peer.spin_until(lambda: peer.status["find_localization"].get("memory_entries") == "5"
                           and peer.status["find_localization"].get("memory_index") == "exact", 30)

    def localize(instruction):
        return peer.call(Localize, LOCALIZE, Localize.Request(instruction=instruction))

    answer = localize(build_instruction("[a red sphere] near <0>", [frame(3, 20, 20)], instruction_id="q1", want_localization=True))
    assert answer.success, answer.message
    result = answer.result
    assert result.instruction_id == "q1" and len(result.matches) == 3
    scores = [m.score for m in result.matches]
    assert scores == sorted(scores, reverse=True)
    assert {m.stamp.sec for m in result.matches} <= set(stamps[-5:])  # evicted frames never come back
    assert result.best_frame.header.stamp == result.matches[0].stamp
    assert [e.label for e in result.best_frame.entities] == ["a red sphere", "<0>"]
    for entity in result.best_frame.entities:  # a mask exactly when the entity is found (the tiny model's fallback presence)
        assert (entity.mask.width == 80) == entity.found and 0.0 <= entity.confidence <= 1.0

    # A service request asks for localization whatever its want_* flags say (it used to be answered
    # "the node is not active").
    answer = localize(build_instruction("[a box]", instruction_id="q0", want_grounding=True, want_localization=False))
    assert answer.success, answer.message
    assert answer.result.instruction_id == "q0" and len(answer.result.matches) == 3

    # A visual entity given as a box in a remembered frame is cut from that frame.
    region = build_instruction("<0>", [FrameRegion(1007 * 10**9, (10, 10, 40, 30))], instruction_id="q2", want_localization=True)
    assert localize(region).success
    forgotten = build_instruction("<0>", [FrameRegion(1001 * 10**9, (10, 10, 40, 30))], instruction_id="q3", want_localization=True)
    answer = localize(forgotten)
    assert not answer.success and "no remembered frame at stamp 1001000000000" in answer.message

    # The topic path: an instruction with want_localization is answered on the localization topic.
    answers = peer.collect(Localization, P.localization_topic)
    publisher = peer.instruction_publisher(P)
    publisher.publish(build_instruction("[a box]", instruction_id="q4", want_localization=True, top_k=2))
    assert peer.spin_until(lambda: any(a.instruction_id == "q4" for a in answers), 60)
    assert len(next(a for a in answers if a.instruction_id == "q4").matches) == 2
    # Only q4 is kept: service queries are answered once and not kept.
    assert peer.spin_until(lambda: peer.status["find_localization"].get("instructions_active") == "1", 10)
