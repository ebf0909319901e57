"""Several cameras, one model: two bags played at once on two namespaces through real DDS.

Fairness is structural (the worker serves the cameras in turn, each through a depth-1 slot; the round
robin itself is tested in test_latest_frame). Here both bags play at the same time, each in lockstep
with its own camera's results: once a frame's colour and depth are out, that camera's player waits for
the frame's result before it sends the next, so no frame is replaced in a depth-1 slot and the counts
do not depend on how DDS or the scheduler happen to deliver. The timeouts are failure guards only.
"""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np
import pytest
from find_ros_msgs.msg import Grounding
from find_ros_msgs.srv import Localize
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from find_ros.nodes.bag_player import play_bag
from find_ros.nodes.base import stamp_ns
from find_ros.nodes.graph_client import service_name
from find_ros.nodes.images import numpy_to_image_msg
from find_ros.nodes.instruction_msgs import build_instruction
from find_ros.nodes.params import GroundingParams
from find_ros.scenes import make_trajectory
from find_ros.scenes.rosbag import TOPIC_CAMERA_INFO, TOPIC_DEPTH, TOPIC_IMAGE

from .conftest import wait_active

pytestmark = pytest.mark.timeout(300)

CAMERAS = {"/front": "front_color_optical_frame", "/rear": "rear_color_optical_frame"}
FRAMES = 12
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def test_two_cameras_share_one_model_fairly_with_3d_and_their_own_frame_ids(peer, perception, tmp_path) -> None:
    bags = {}
    for seed, ns in enumerate(CAMERAS, start=3):
        make_trajectory(tmp_path / ns.strip("/"), FRAMES, seed=seed, size=(64, 48), fps=10.0, storage="mcap", progress=False)
        bags[ns] = tmp_path / ns.strip("/") / "rosbag"
    # Each bag's /camera/... topics are played under its namespace: /front/camera/color/image_raw, ...
    process = perception("grounding,localization", cameras=list(CAMERAS), cameras_image_topic="camera/color/image_raw",
                         cameras_depth_topic="camera/depth/image_raw", cameras_info_topic="camera/color/camera_info",
                         image_reliability="reliable", keyframe_interval_s=0.0, rerank_candidates=0, top_k=2 * FRAMES)
    wait_active(peer, process, "find_grounding")
    peer.wait_active(["find_localization"], 60)
    results: dict[str, list[Grounding]] = {ns: [] for ns in CAMERAS}
    answered = threading.Condition()

    def on_result(ns: str, msg: Grounding) -> None:
        with answered:
            results[ns].append(msg)
            answered.notify_all()

    for ns in CAMERAS:
        peer.collect(Grounding, f"{ns}{GroundingParams().grounding_topic}", 100, lambda m, ns=ns: on_result(ns, m))
    publisher = peer.instruction_publisher(GroundingParams(), subscribers=2)
    publisher.publish(build_instruction("[the red box]", instruction_id="box", want_localization=True))
    assert peer.spin_until(lambda: peer.status["find_grounding"].get("instructions_active") == "1", 30)

    # Both bags at once, each on its own thread and namespace, with its own camera frame id.
    start = threading.Barrier(len(CAMERAS))
    played: dict[str, int] = {}

    def play(ns: str) -> None:
        halves: Counter[int] = Counter()  # per stamp: colour and depth published so far

        def lockstep(topic: str, stamp: int | None, wall: float) -> None:
            if topic not in (TOPIC_IMAGE, TOPIC_DEPTH) or stamp is None:
                return
            halves[stamp] += 1
            if halves[stamp] == 2:  # the frame is complete: wait for its result (the main thread spins)
                with answered:
                    answered.wait_for(lambda: any(stamp_ns(m.header.stamp) == stamp for m in results[ns]), 60)

        start.wait(60)
        played[ns] = play_bag(peer.node, bags[ns], topics=[TOPIC_IMAGE, TOPIC_CAMERA_INFO, TOPIC_DEPTH], rate=1.0,
                              qos=RELIABLE, wait_for_subscribers=2, namespace=ns, frame_id=CAMERAS[ns],
                              on_publish=lockstep)

    fences = {ns: peer.node.create_publisher(Image, f"{ns}/{TOPIC_IMAGE.lstrip('/')}", RELIABLE) for ns in CAMERAS}
    assert peer.spin_until(lambda: all(f.get_subscription_count() >= 2 for f in fences.values()), 30)
    threads = [threading.Thread(target=play, args=(ns,)) for ns in CAMERAS]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        peer.spin_for(0.1)
    assert played == {ns: 3 * FRAMES for ns in CAMERAS}

    fence_stamps = {}
    for ns, publisher in fences.items():  # no depth comes with it: answered in 2D after depth_wait_s
        msg = numpy_to_image_msg(np.zeros((48, 64, 3), np.uint8), "rgb8")
        msg.header.stamp.sec, msg.header.stamp.nanosec = 2_000_000_000, 0  # after every bag stamp
        msg.header.frame_id = CAMERAS[ns]
        publisher.publish(msg)
        fence_stamps[ns] = msg.header.stamp

    def fenced() -> bool:
        return all(any(m.header.stamp == fence_stamps[ns] for m in results[ns]) for ns in CAMERAS)

    assert peer.spin_until(fenced, 120), (dict(peer.status["find_grounding"]), {ns: len(r) for ns, r in results.items()})
    for ns in CAMERAS:  # the bag frames' results, the fence left out
        results[ns] = [m for m in results[ns] if m.header.stamp != fence_stamps[ns]]
    processed = {ns: len(results[ns]) for ns in CAMERAS}
    print("processed per camera:", processed, "of", FRAMES, "each")
    assert processed == {ns: FRAMES for ns in CAMERAS}, processed  # every frame of both: neither starved
    for ns, frame_id in CAMERAS.items():
        assert {m.header.frame_id for m in results[ns]} == {frame_id}
        assert int(peer.status["find_grounding"][f"{ns}.frames_with_depth"]) > 0
        with_position = [e for m in results[ns] for e in m.entities if e.has_position]
        assert with_position, f"no 3D position for {ns}"
        for e in with_position:  # a point in front of the camera, inside its own box
            p, lo, hi = (np.array([v.x, v.y, v.z]) for v in (e.position, e.box_min, e.box_max))
            assert p[2] > 0 and np.all(lo <= p + 1e-6) and np.all(p <= hi + 1e-6) and e.depth_points > 0

    # One memory holds both cameras' frames, each under the frame id of the camera that saw it.
    assert peer.spin_until(lambda: all(int(peer.status["find_localization"].get(f"{ns}.frames_processed", 0)) > 0
                                       for ns in CAMERAS), 120), dict(peer.status["find_localization"])
    answer = peer.call(Localize, service_name("find_localization", "localize"),
                       Localize.Request(instruction=build_instruction("[the red box]", instruction_id="q", want_localization=True)))
    assert answer.success, answer.message
    seen = Counter(m.frame_id for m in answer.result.matches)
    assert set(seen) == set(CAMERAS.values()), seen
    assert answer.result.best_frame.header.frame_id == answer.result.matches[0].frame_id
