"""The perception demo (`make demo`, `find-ros demo`): the whole graph on a synthetic walk-through.

1. Render a trajectory of the synthetic world (rosbag2 + ground truth) unless one is there already.
2. Start the perception graph (`find-ros perception`, both nodes) in its own process, DDS on loopback.
3. Send instructions naming the scene's objects: text ("[the red cone]") and visual ("<0>" with a crop
   of the object cut from a frame where it is fully visible).
4. Play the bag. Frames go out in lockstep: the next frame leaves once the results of this one are in
   (or a timeout passes), so every frame is grounded however slow the CPU; real-time behaviour is
   what benchmarks/perception.py measures.
5. Score each grounding against the ground-truth instance mask of its frame (IoU), ask the localization
   node for the top-3 frames of each text instruction and check that the object is visible in one.
6. Write overlay images and an overlay video, and report.json, under the output folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from find_ros.image_io import ENTITY_CROP_CONTEXT

CAMERA_TOPIC = "/camera/color/image_raw"


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


@dataclass
class InstructionScore:
    instruction_id: str
    kind: str                  # "text" | "crop"
    text: str
    object_id: int
    object_name: str
    frames_scored: int = 0
    mean_iou: float = 0.0
    localization_hit: bool | None = None
    localization_stamps: list[int] = field(default_factory=list)
    # Probability that top_k frames picked at random show the object: what a hit is worth.
    localization_chance: float | None = None
    # One entry per scored frame: its index, the object's visible area (px) and fraction, the IoU.
    per_frame: list[dict[str, float]] = field(default_factory=list)


@dataclass
class DemoReport:
    model: str
    device: str
    frames_played: int
    results_received: int
    mean_iou: float
    localization_hits: int
    localization_queries: int
    instructions: list[InstructionScore]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _trajectory(settings: DemoSettings) -> Path:
    from find_ros.scenes import make_trajectory

    folder = settings.out / "trajectory"
    if not (folder / "ground_truth.json").is_file():
        make_trajectory(folder, settings.frames, settings.seed, size=settings.size, path="walk", storage="sqlite3")
    return folder


def _instance_mask(folder: Path, frame: dict[str, Any], object_id: int) -> np.ndarray:
    import cv2

    path = folder / frame["image"].replace("/images/", "/instances/")
    ids = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if ids is None:
        raise FileNotFoundError(f"ground-truth instance image missing: {path}")
    return ids == object_id


def _instructions(folder: Path, truth: dict[str, Any], settings: DemoSettings) -> list[tuple[Any, InstructionScore]]:
    """A text and a crop instruction for each of the best-seen objects."""
    from find_ros.image_io import crop_around, read_rgb
    from find_ros.nodes.instruction_msgs import build_instruction

    def best_view(object_id: int) -> tuple[dict[str, Any], dict[str, Any]] | None:
        views = [(f, v) for f in truth["frames"] for v in f["visible"] if v["id"] == object_id and v.get("visible_fraction", 0) >= 0.99]
        return max(views, key=lambda fv: fv[1]["area"], default=None)

    seen = [(o, best_view(o["id"])) for o in truth["objects"]]
    seen = sorted([(o, bv) for o, bv in seen if bv is not None], key=lambda item: -item[1][1]["area"])[: settings.max_objects]
    out = []
    for obj, (frame, view) in seen:
        expression = obj["expressions"][0]
        text_id = f"text-{obj['id']}"
        out.append((build_instruction(f"[{expression}]", instruction_id=text_id, want_grounding=True, want_localization=False),
                    InstructionScore(text_id, "text", f"[{expression}]", obj["id"], obj["name"])))
        x, y, w, h = view["bbox"]
        crop = crop_around(read_rgb(folder / frame["image"]), (x, y, x + w, y + h), settings.crop_context)
        crop_id = f"crop-{obj['id']}"
        out.append((build_instruction("<0>", [crop], instruction_id=crop_id, want_grounding=True),
                    InstructionScore(crop_id, "crop", f"<0> = crop of {obj['name']} from frame {frame['index']}", obj["id"], obj["name"])))
    if not out:
        raise RuntimeError("no object is fully visible in any frame of the trajectory; try another --seed")
    return out


def run_demo(settings: DemoSettings, log: Any = print) -> DemoReport:
    import rclpy
    import yaml
    from diagnostic_msgs.msg import DiagnosticArray
    from find_ros_msgs.msg import Grounding, Instruction
    from find_ros_msgs.srv import Localize
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from find_ros.image_io import write_rgb
    from find_ros.nodes.bag_player import play_bag
    from find_ros.nodes.images import image_msg_to_rgb
    from find_ros.nodes.qos import INSTRUCTION_PUBLISHER
    from find_ros.ros_env import isolate_dds

    settings.out.mkdir(parents=True, exist_ok=True)
    folder = _trajectory(settings)
    truth = json.loads((folder / "ground_truth.json").read_text())
    frames_by_stamp = {f["stamp_ns"]: f for f in truth["frames"]}
    instructions = _instructions(folder, truth, settings)
    scores = {score.instruction_id: score for _, score in instructions}
    log(f"[demo] {len(truth['frames'])} frames; {len(instructions)} instructions: "
        + ", ".join(s.text if s.kind == "text" else f"<0> crop of {s.object_name}" for s in scores.values()))

    isolate_dds()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    common = {"model": settings.model, "image_topic": CAMERA_TOPIC, "max_instructions": len(instructions),
              "diagnostics_period_s": 0.1}
    params = {
        "find_grounding": {"ros__parameters": {**common, "publish_overlay": False}},
        "find_localization": {"ros__parameters": {**common, "keyframe_interval_s": 0.0, "memory_capacity": 10_000,
                                                  "top_k": settings.top_k}},
    }
    params_file = settings.out / "perception.yaml"
    params_file.write_text(yaml.safe_dump(params))
    graph = subprocess.Popen([sys.executable, "-m", "find_ros.cli", "perception", "--params", str(params_file)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("find_ros_demo", context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)

        def spin_until(condition: Any, timeout_s: float) -> bool:
            deadline = time.monotonic() + timeout_s
            while not condition() and time.monotonic() < deadline:
                if graph.poll() is not None:
                    raise RuntimeError("the perception process ended:\n" + graph.communicate()[0][-3000:])
                executor.spin_once(timeout_sec=0.05)
            return condition()

        status: dict[str, dict[str, str]] = defaultdict(dict)
        node.create_subscription(DiagnosticArray, "/diagnostics",
                                 lambda m: [status[s.name].update({kv.key: kv.value for kv in s.values}) for s in m.status], 50)
        results: dict[int, list[Any]] = defaultdict(list)
        node.create_subscription(Grounding, "/find_ros/grounding",
                                 lambda m: results[m.header.stamp.sec * 10**9 + m.header.stamp.nanosec].append(m), 100)
        log("[demo] starting the perception graph (grounding + localization)")
        if not spin_until(lambda: all(status[n].get("state") == "active" for n in ("find_grounding", "find_localization")), 300):
            raise RuntimeError("the perception graph did not become active")
        model_name, device = status["find_grounding"]["model"], status["find_grounding"]["device"]
        log(f"[demo] model {model_name} on {device}")

        publisher = node.create_publisher(Instruction, "/find_ros/instruction", INSTRUCTION_PUBLISHER)
        spin_until(lambda: publisher.get_subscription_count() >= 2, 30)
        for msg, _ in instructions:
            publisher.publish(msg)
        spin_until(lambda: status["find_grounding"].get("instructions_active") == str(len(instructions)), 30)

        published = [0]

        def localization_done() -> int:
            s = status["find_localization"]
            return int(s.get("frames_processed", 0)) + int(s.get("frames_dropped", 0)) + int(s.get("frames_bad", 0))

        def lockstep(topic: str, stamp: int | None, wall: float) -> None:
            """Block until both nodes are through with this frame, so none is skipped."""
            if topic == CAMERA_TOPIC and stamp is not None:
                published[0] += 1
                spin_until(lambda: len(results[stamp]) >= len(instructions) and localization_done() >= published[0],
                           settings.frame_timeout_s)

        camera_qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        spin_until(lambda: False, 0.5)
        log(f"[demo] playing {folder / 'rosbag'} in lockstep")
        played = play_bag(node, folder / "rosbag", topics=[CAMERA_TOPIC], rate=1000.0, qos=camera_qos,
                          on_publish=lockstep, wait_for_subscribers=2, wait_timeout_s=60)

        # Grounding IoU against the ground truth of each frame.
        ious: dict[str, list[float]] = defaultdict(list)
        overlays = []
        for stamp, frame_results in sorted(results.items()):
            frame = frames_by_stamp.get(stamp)
            if frame is None:
                continue
            for result in frame_results:
                score = scores[result.instruction_id]
                view = next((v for v in frame["visible"] if v["id"] == score.object_id and v["area"] > 0), None)
                if view is None or not result.entities:
                    continue
                entity = result.entities[0]
                predicted = image_msg_to_rgb(entity.mask)[..., 0] > 127 if entity.mask.width else np.zeros((result.image_height, result.image_width), bool)
                target = _instance_mask(folder, frame, score.object_id)
                union = np.logical_or(predicted, target).sum()
                iou = float(np.logical_and(predicted, target).sum() / union) if union else 0.0
                ious[score.instruction_id].append(iou)
                score.per_frame.append({"frame": frame["index"], "area": view["area"],
                                        "visible_fraction": view.get("visible_fraction", 1.0),
                                        "score": round(float(entity.score), 4), "iou": round(iou, 4)})
                overlays.append((frame, score, predicted, entity.score))
        for instruction_id, values in ious.items():
            scores[instruction_id].frames_scored = len(values)
            scores[instruction_id].mean_iou = float(np.mean(values))

        # Localization: top-k frames of each text instruction; a hit when the object is visible in one.
        client = node.create_client(Localize, "/find_localization/localize")
        client.wait_for_service(timeout_sec=30)
        for msg, score in instructions:
            if score.kind != "text":
                continue
            msg.want_localization, msg.want_grounding, msg.top_k = True, False, settings.top_k
            msg.id = f"loc-{score.object_id}"
            future = client.call_async(Localize.Request(instruction=msg))
            spin_until(future.done, 120)
            answer = future.result()
            if answer is None or not answer.success:
                score.localization_hit = False
                continue
            stamps = [m.stamp.sec * 10**9 + m.stamp.nanosec for m in answer.result.matches]
            score.localization_stamps = stamps
            showing = {f["stamp_ns"] for f in truth["frames"]
                       if any(v["id"] == score.object_id and v.get("visible_fraction", 0) >= 0.5 for v in f["visible"])}
            score.localization_hit = any(s in showing for s in stamps)
            score.localization_chance = _chance_of_hit(len(truth["frames"]), len(showing), settings.top_k)
    finally:
        rclpy.shutdown(context=context)
        graph.terminate()
        try:
            graph.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            graph.kill()

    _write_overlays(settings.out, folder, overlays, write_rgb)
    all_ious = [v for values in ious.values() for v in values]
    localized = [s for s in scores.values() if s.localization_hit is not None]
    report = DemoReport(
        model=model_name, device=device, frames_played=played, results_received=sum(len(r) for r in results.values()),
        mean_iou=float(np.mean(all_ious)) if all_ious else 0.0,
        localization_hits=sum(bool(s.localization_hit) for s in localized), localization_queries=len(localized),
        instructions=list(scores.values()),
    )
    (settings.out / "report.json").write_text(json.dumps(report.to_dict(), indent=1))
    return report


def _chance_of_hit(frames: int, showing: int, k: int) -> float:
    """P(at least one of k frames drawn without replacement from ``frames`` is among ``showing``)."""
    from math import comb

    k = min(k, frames)
    return 1.0 - comb(frames - showing, k) / comb(frames, k) if frames else 0.0


def _write_overlays(out: Path, folder: Path, overlays: list[tuple], write_rgb: Any) -> None:
    """One picture per frame with every instruction's mask drawn, and the same as a video."""
    import cv2

    from find_ros.image_io import read_rgb
    from find_ros.model.results import mask_box
    from find_ros.overlay import Drawn, draw_overlay

    by_frame: dict[int, list[tuple]] = defaultdict(list)
    frames = {}
    for frame, score, mask, confidence in overlays:
        by_frame[frame["index"]].append((score, mask, confidence))
        frames[frame["index"]] = frame
    pictures = out / "overlays"
    pictures.mkdir(exist_ok=True)
    video = None
    for index in sorted(by_frame):
        rgb = read_rgb(folder / frames[index]["image"])
        drawn = [Drawn(s.text if s.kind == "text" else f"crop:{s.object_name}", c, m, mask_box(m)) for s, m, c in by_frame[index]]
        picture = draw_overlay(rgb, drawn)
        write_rgb(pictures / f"frame_{index:05d}.png", picture)
        if video is None:
            video = cv2.VideoWriter(str(out / "overlay.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (rgb.shape[1], rgb.shape[0]))
        video.write(np.ascontiguousarray(picture[..., ::-1]))
    if video is not None:
        video.release()


def print_report(report: DemoReport, out: Path, log: Any = print) -> None:
    log("")
    log(f"{'instruction':58s} {'frames':>6s} {'IoU':>6s}  top-3 hit (chance)")
    for s in report.instructions:
        hit = "-" if s.localization_hit is None else f"{'yes' if s.localization_hit else 'no':3s} ({s.localization_chance:.2f})"
        log(f"{s.text[:58]:58s} {s.frames_scored:6d} {s.mean_iou:6.3f}  {hit}")
    log(f"\nmodel {report.model} on {report.device}: {report.frames_played} frames, {report.results_received} results; "
        f"mean grounding IoU {report.mean_iou:.3f}; localization {report.localization_hits}/{report.localization_queries} in top 3")
    log(f"overlays, video and report.json in {out}")
