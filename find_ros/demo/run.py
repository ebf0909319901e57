"""The demo's run: the graph in its own process, the instructions, the bag played in lockstep, the
localization queries, then the scores and pictures (see find_ros.demo for the steps)."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from find_ros.demo.scoring import DemoReport
from find_ros.image_io import ENTITY_CROP_CONTEXT


@dataclass
class DemoSettings:
    out: Path
    model: str = ""                # "" = the default model
    frames: int = 40
    size: tuple[int, int] = (320, 240)
    seed: int = 7
    max_objects: int = 4           # objects named by instructions (each gets a text and a crop one)
    crop_context: float = ENTITY_CROP_CONTEXT  # a crop shows its object's box grown this much
    top_k: int = 3
    frame_timeout_s: float = 30.0  # give up waiting for one frame's results after this


def run_demo(settings: DemoSettings, log: Any = print) -> DemoReport:
    from find_ros_msgs.msg import Grounding
    from find_ros_msgs.srv import Localize
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from find_ros.demo.overlays import write_overlays
    from find_ros.demo.scene_instructions import scene_instructions, trajectory
    from find_ros.demo.scoring import position_errors, score_groundings, score_localization, score_presence
    from find_ros.nodes.bag_player import play_bag
    from find_ros.nodes.graph_client import NODE_NAMES, GraphClient, service_name, start_perception, stop_process
    from find_ros.nodes.params import GroundingParams
    from find_ros.ros_env import isolate_dds
    from find_ros.scenes.rosbag import TOPIC_CAMERA_INFO, TOPIC_DEPTH, TOPIC_IMAGE

    grounding = GroundingParams()  # its topics; the localization node shares the instruction topic
    settings.out.mkdir(parents=True, exist_ok=True)
    folder = trajectory(settings.out, settings.frames, settings.seed, settings.size)
    truth = json.loads((folder / "ground_truth.json").read_text())
    instructions = scene_instructions(folder, truth, settings.max_objects, settings.crop_context)
    scores = {score.instruction_id: score for _, score in instructions}
    log(f"[demo] {len(truth['frames'])} frames; {len(instructions)} instructions: "
        + ", ".join(s.text if s.kind == "text" else f"<0> crop of {s.object_name}" for s in scores.values()))

    isolate_dds()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # The nodes watch the bag's camera topics (colour, aligned depth, CameraInfo), reliably (the bag is
    # played reliably, in lockstep), and keep every instruction the demo sends.
    common = {"model": settings.model, "image_topic": TOPIC_IMAGE, "image_reliability": "reliable",
              "depth_topic": TOPIC_DEPTH, "camera_info_topic": TOPIC_CAMERA_INFO,
              "max_instructions": len(instructions), "max_instructions_per_sender": len(instructions),
              "diagnostics_period_s": 0.1}
    graph = start_perception({
        NODE_NAMES["grounding"]: {**common, "publish_overlay": False},
        NODE_NAMES["localization"]: {**common, "keyframe_interval_s": 0.0, "memory_capacity": 10_000, "top_k": settings.top_k},
    }, settings.out)
    client = GraphClient("find_ros_demo", graph)
    try:
        client.watch_diagnostics()
        results: dict[int, list[Any]] = defaultdict(list)
        client.collect(Grounding, grounding.grounding_topic, 100,
                       lambda m: results[m.header.stamp.sec * 10**9 + m.header.stamp.nanosec].append(m))
        log("[demo] starting the perception graph (grounding + localization)")
        client.wait_active(list(NODE_NAMES.values()), 300)
        status = client.status
        model_name, device = status[NODE_NAMES["grounding"]]["model"], status[NODE_NAMES["grounding"]]["device"]
        log(f"[demo] model {model_name} on {device}")

        publisher = client.instruction_publisher(grounding, subscribers=2)
        for msg, _ in instructions:
            publisher.publish(msg)
        client.spin_until(lambda: status[NODE_NAMES["grounding"]].get("instructions_active") == str(len(instructions)), 30)

        published = [0]
        halves: dict[int, int] = defaultdict(int)  # per stamp: colour and depth published so far

        def localization_done() -> int:
            s = status[NODE_NAMES["localization"]]
            return int(s.get("frames_processed", 0)) + int(s.get("frames_dropped", 0)) + int(s.get("frames_bad", 0))

        def lockstep(topic: str, stamp: int | None, wall: float) -> None:
            """Once a frame's colour and depth are out, block until both nodes are through with it,
            so none is skipped."""
            if topic in (TOPIC_IMAGE, TOPIC_DEPTH) and stamp is not None:
                halves[stamp] += 1
            if halves.get(stamp) == 2:
                del halves[stamp]
                published[0] += 1
                client.spin_until(lambda: len(results[stamp]) >= len(instructions) and localization_done() >= published[0],
                                  settings.frame_timeout_s)

        log(f"[demo] playing {folder / 'rosbag'} in lockstep")
        play_bag(client.node, folder / "rosbag", topics=[TOPIC_IMAGE, TOPIC_CAMERA_INFO, TOPIC_DEPTH], rate=1000.0,
                 qos=QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE),
                 on_publish=lockstep, wait_for_subscribers=2, wait_timeout_s=60)
        all_ious, overlays = score_groundings(folder, truth, results, scores)

        # Localization: top-k frames of each text instruction; a hit when the object is visible in one.
        localize = service_name(NODE_NAMES["localization"], "localize")
        for msg, score in instructions:
            if score.kind != "text":
                continue
            msg.want_localization, msg.want_grounding, msg.top_k = True, False, settings.top_k
            msg.id = f"loc-{score.object_id}"
            try:
                answer = client.call(Localize, localize, Localize.Request(instruction=msg), timeout_s=120)
            except TimeoutError:
                answer = None
            if answer is None or not answer.success:
                score.localization_hit = False
                continue
            score_localization(score, truth, [m.stamp.sec * 10**9 + m.stamp.nanosec for m in answer.result.matches],
                               settings.top_k)
    finally:
        client.close()
        stop_process(graph)

    write_overlays(settings.out, folder, overlays)
    localized = [s for s in scores.values() if s.localization_hit is not None]
    surface, centre = position_errors(list(scores.values()))
    found_ious = [f["iou"] for s in scores.values() for f in s.per_frame if f["found"]]
    report = DemoReport(
        model=model_name, device=device, frames_played=published[0], results_received=sum(len(r) for r in results.values()),
        mean_iou=float(np.mean(all_ious)) if all_ious else 0.0,
        mean_iou_found=float(np.mean(found_ious)) if found_ious else None,
        localization_hits=sum(bool(s.localization_hit) for s in localized), localization_queries=len(localized),
        top_k=settings.top_k, instructions=list(scores.values()), presence=score_presence(list(scores.values())),
        results_with_position=len(surface),
        median_surface_error_m=float(np.median(surface)) if surface else None,
        median_centre_error_m=float(np.median(centre)) if centre else None,
    )
    (settings.out / "report.json").write_text(json.dumps(report.to_dict(), indent=1))
    return report
