"""3D positions through the grounding node over real DDS: depth and CameraInfo paired by stamp.

Every message is sent reliably and each frame's result is waited for before the next is sent, so
nothing depends on timing: the depth image and CameraInfo go out before their colour frame, which
the node then pairs on arrival.
"""

from __future__ import annotations

import numpy as np
import pytest
from find_ros_msgs.msg import Grounding
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from find_ros.nodes.images import numpy_to_image_msg
from find_ros.nodes.instruction_msgs import build_instruction
from find_ros.nodes.params import GroundingParams

from .conftest import diagnostics_text, frame, wait_active

pytestmark = pytest.mark.timeout(180)

P = GroundingParams()
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
W, H, FX, CX, CY = 80, 60, 70.0, 39.5, 29.5


def _info(stamp: int) -> CameraInfo:
    msg = CameraInfo(width=W, height=H, distortion_model="plumb_bob")
    msg.k = [FX, 0.0, CX, 0.0, FX, CY, 0.0, 0.0, 1.0]
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 10**9)
    msg.header.frame_id = "cam_optical"
    return msg


def _stamped(msg, stamp: int):
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 10**9)
    msg.header.frame_id = "cam_optical"
    return msg


def test_entities_carry_their_position_and_frames_without_usable_depth_are_answered_in_2d(peer, perception) -> None:
    process = perception("grounding", image_reliability="reliable", depth_wait_s=0.2)
    wait_active(peer, process)
    diags = peer.diagnostics
    results: list[Grounding] = []
    peer.collect(Grounding, P.grounding_topic, 100, results.append)
    pubs = {topic: peer.node.create_publisher(kind, topic, RELIABLE)
            for topic, kind in ((P.image_topic, Image), (P.depth_topic, Image), (P.camera_info_topic, CameraInfo))}
    assert peer.spin_until(lambda: all(p.get_subscription_count() > 0 for p in pubs.values()), 30)
    peer.instruction_publisher(P).publish(build_instruction("[a red cone] and [a blue box]", instruction_id="i"))
    assert peer.spin_until(lambda: peer.status["find_grounding"].get("instructions_active") == "1", 30)

    def send(stamp: int, depth: np.ndarray | None, seed: int) -> Grounding:
        pubs[P.camera_info_topic].publish(_info(stamp))
        if depth is not None:
            encoding = "16UC1" if depth.dtype == np.uint16 else "32FC1"
            pubs[P.depth_topic].publish(_stamped(numpy_to_image_msg(depth, encoding), stamp))
        pubs[P.image_topic].publish(_stamped(numpy_to_image_msg(frame(seed), "rgb8"), stamp))
        assert peer.spin_until(lambda: any(r.header.stamp.sec * 10**9 + r.header.stamp.nanosec == stamp for r in results), 60)
        return next(r for r in results if r.header.stamp.sec * 10**9 + r.header.stamp.nanosec == stamp)

    # A wall 1.5 m ahead (16UC1 mm): each mask's points lie on it, centred where the mask is.
    result = send(10**9, np.full((H, W), 1500, np.uint16), 1)
    assert result.header.frame_id == "cam_optical"
    checked = 0
    for entity in result.entities:
        if entity.mask_area < 5:
            continue
        assert entity.has_position and entity.depth_points == entity.mask_area
        assert entity.position.z == pytest.approx(1.5) and entity.box_min.z == pytest.approx(1.5)
        mask = np.frombuffer(bytes(entity.mask.data), np.uint8).reshape(H, W) > 0
        vs, us = np.nonzero(mask)
        assert entity.position.x == pytest.approx((np.median(us) - CX) * 1.5 / FX)
        assert entity.position.y == pytest.approx((np.median(vs) - CY) * 1.5 / FX)
        assert entity.box_min.x <= entity.position.x <= entity.box_max.x
        checked += 1
    assert checked > 0, [e.mask_area for e in result.entities]

    # 32FC1 metres with no reading anywhere: too few points, so no position, and no complaint.
    result = send(2 * 10**9, np.full((H, W), np.nan, np.float32), 2)
    assert not any(e.has_position for e in result.entities)

    # Depth of another size is not registered to colour: answered in 2D, the reason on /diagnostics.
    result = send(3 * 10**9, np.full((H // 2, W // 2), 1500, np.uint16), 3)
    assert not any(e.has_position for e in result.entities)
    assert peer.spin_until(lambda: "registered to colour" in diagnostics_text(diags), 30)

    # A frame whose depth never comes is answered in 2D once depth_wait_s has passed.
    result = send(4 * 10**9, None, 4)
    assert not any(e.has_position for e in result.entities) and len(result.entities) == 2
    assert peer.spin_until(lambda: int(peer.status["find_grounding"].get("frames_without_depth", 0)) >= 1, 30)
    assert int(peer.status["find_grounding"]["frames_with_depth"]) == 3
