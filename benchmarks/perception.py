"""Perception graph under a live camera: sustained FPS, end-to-end latency, drops and memory.

    python benchmarks/perception.py --json [--model DIR] [--seconds 60] [--hz 30] [--size 640x480]
    python benchmarks/perception.py --json --soak [--duration 300] [--model DIR] [--size 640x480]
    python benchmarks/perception.py --json --sweep [--seconds 15]   # 1/4/8 instructions x 320x240/640x480

The grounding node runs as `find-ros perception` in its own process, as on a robot. This process is
the camera: it publishes frames at --hz (best effort unless --reliable, stamped at publish time) and
instructions, and receives the Grounding results over DDS (loopback, private domain), through
find_ros.nodes.graph_client. Figures, one JSON line each:

* processed_fps       frames answered per second: per camera phase, the results after the first
                      over the time from the first to the last (the steady rate, without the
                      phase's start and end); ``ratio`` is against the camera rate
* latency_ms_p50/p95  frame stamp -> result received here (loopback; includes DDS both ways)
* frames_received     frames that reached the node (best-effort transport may lose large frames)
* frames_dropped      frames the node replaced before processing (its diagnostics), and the fraction
* rss_mb_start/end    resident memory of the perception process after warm-up and at the end
* model_only_fps      this process calls FindModel directly on the same frames and --instructions
                      (encode_image + ground_many), the model's own limit, while the camera pauses
                      and the node waits idle; ``e2e_over_model`` is processed_fps / model_only_fps.
                      The measured window is --rounds camera phases, each followed by a model-only
                      phase (--model-seconds shared among them), so both figures are taken under
                      the same conditions of the machine (a shared VM's speed drifts over minutes);
                      ``per_round`` gives each camera phase's rate over the model-only phase after
                      it, with their mean and sd: how far the drift within one run moves the ratio
* latency_p95_frame_periods  latency p95 in periods of the processed rate (1 / processed_fps)
* cpu_cores_model     CPU the perception process's model threads used over the run, in cores, beside
                      its main thread (the executor), its DDS threads and the camera (this process):
                      on a machine with few cores, what the rest of the graph takes from the model
* spans_ms_p50        median of each result's Timing spans (decode, vision, interface, postprocess,
                      queue) and ``other``: the median over results of their latency minus their
                      spans (DDS both ways, ROS conversion, executor hand-offs, the results
                      published before it in the same frame) — where a frame's time goes

--instructions N keeps N instructions active (texts of different lengths); a frame counts as processed
when all N results arrived, its latency is the last one's. --sweep runs the steady mode for 1, 4 and 8
instructions at 320x240 and 640x480, each point --seconds long (15 s by default in a sweep).

--soak runs --duration seconds (5 minutes by default) of what a shared robot sees: JPEG frames
(image_transport compressed) of which 3 in every 30 are malformed in turn (issue 16's PNG that
declares 12000x12000, bytes that are no image, an empty message, a PNG cut in half), and instruction
churn (every 2 s one is set and the oldest cancelled, 3 kept; every 10 s one too long to accept).
Its figures: resident memory and latency p50/p95 per minute, frames processed / bad / too large,
the instructions' answers, and how soon a valid frame is answered after a bomb compared with after
any valid frame (``next_answer_ms``: from a frame's stamp to the first result for a frame stamped at
or after it).

Frames are a walk through one scene of the synthetic world (find_ros.scenes), the kind of image the
default model was trained on, replayed in a loop; --random uses noise frames instead.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def camera_frames(size: tuple[int, int], count: int, random: bool) -> list[np.ndarray]:
    width, height = size
    if not random:
        from find_ros.scenes import Intrinsics, Renderer, sample_scene
        from find_ros.scenes.viewpoints import camera_path

        rng = np.random.default_rng(0)
        scene = sample_scene(rng, distinct=True)
        intrinsics = Intrinsics.from_fov(width, height, hfov_deg=60.0)
        renderer = Renderer(scene)
        return [renderer.render(pose, intrinsics, rng).rgb for pose in camera_path(scene, "walk", count, rng)]
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def next_answer_ms(sent_stamps: list[int], result_stamps: list[int], result_times: list[int]) -> list[float]:
    """Per sent frame: ms from its stamp to the first result for a frame stamped at or after it
    (results arrive in stamp order: one worker, one reliable writer)."""
    out = []
    for stamp in sent_stamps:
        i = bisect.bisect_left(result_stamps, stamp)
        if i < len(result_stamps):
            out.append((result_times[i] - stamp) / 1e6)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="", help="model directory ('' = the default model)")
    parser.add_argument("--seconds", type=float, default=60.0, help="steady mode: measured seconds")
    parser.add_argument("--soak", action="store_true", help="malformed frames and instruction churn (see above)")
    parser.add_argument("--duration", type=float, default=300.0, help="soak mode: seconds")
    parser.add_argument("--hz", type=float, default=30.0)
    parser.add_argument("--size", default="640x480", help="camera resolution WxH")
    parser.add_argument("--instruction", default="[the red sphere]", help="the first instruction")
    parser.add_argument("--instructions", type=int, default=1, help="active instructions (steady mode)")
    parser.add_argument("--sweep", action="store_true", help="steady runs over 1/4/8 instructions x 320x240/640x480")
    parser.add_argument("--model-seconds", type=float, default=8.0, help="model-only measurement per point")
    parser.add_argument("--rounds", type=int, default=4, help="camera / model-only phases the measured window alternates")
    parser.add_argument("--random", action="store_true", help="noise frames instead of rendered ones")
    parser.add_argument("--reliable", action="store_true", help="reliable camera (and node subscription)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.sweep:
        if args.soak:
            parser.error("--sweep is a steady-mode sweep; it does not combine with --soak")
        if not any(a.startswith("--seconds") for a in sys.argv[1:]):
            args.seconds = 15.0
        for size in SWEEP_SIZES:
            for count in SWEEP_INSTRUCTIONS:
                run_point(argparse.Namespace(**{**vars(args), "size": size, "instructions": count}))
        return 0
    if args.instructions < 1 or args.instructions > len(INSTRUCTIONS):
        parser.error(f"--instructions must be 1..{len(INSTRUCTIONS)}")
    run_point(args)
    return 0


# Steady-mode instructions, of different lengths; the first is --instruction.
INSTRUCTIONS = ["[the red sphere]", "[the blue cube]", "[the green cone] near [the yellow box]", "[the tall lamp]",
                "[the small white cylinder] left of [the wall]", "[the floor]", "[the purple ball] by [the door]",
                "[a large wooden table with a cup on it]"]
SWEEP_SIZES = ("320x240", "640x480")
SWEEP_INSTRUCTIONS = (1, 4, 8)


def run_point(args: argparse.Namespace) -> None:
    width, height = (int(v) for v in args.size.lower().split("x"))
    texts = [args.instruction, *INSTRUCTIONS[1:]][: 1 if args.soak else args.instructions]

    from find_ros.ros_env import isolate_dds

    isolate_dds()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from find_ros_msgs.msg import Grounding, InstructionStatus

    from find_ros.nodes.graph_client import Camera, GraphClient, resident_mb, start_perception, stop_process
    from find_ros.nodes.params import GroundingParams
    from find_ros.nodes.qos import INSTRUCTION_STATUS

    topics = GroundingParams()
    frames = camera_frames((width, height), 30, args.random)
    node_params = {"model": args.model, "publish_overlay": False, "diagnostics_period_s": 1.0,
                   "image_transport": "compressed" if args.soak else "raw",
                   "image_reliability": "reliable" if args.reliable else "auto",
                   "max_instructions_per_sender": max(4, len(texts))}  # every instruction comes from this process
    with tempfile.TemporaryDirectory() as tmp:
        graph = start_perception({"find_grounding": node_params}, Path(tmp), nodes="grounding")
        client = GraphClient("camera_benchmark", graph)
        try:
            result_stamps: list[int] = []
            result_times: list[int] = []  # ns, this node's clock, when each result arrived

            spans: list[tuple[float, ...]] = []  # each result's Timing spans

            def on_result(msg: Grounding) -> None:
                result_times.append(client.node.get_clock().now().nanoseconds)
                result_stamps.append(msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)
                t = msg.timing
                spans.append((t.decode_ms, t.vision_ms, t.interface_ms, t.postprocess_ms, t.queue_ms))

            client.collect(Grounding, topics.grounding_topic, 50, on_result)
            answers = client.collect(InstructionStatus, topics.instruction_status_topic, INSTRUCTION_STATUS)
            client.watch_diagnostics()
            client.wait_active(["find_grounding"], 180)
            status = client.status["find_grounding"]
            from rclpy.qos import QoSProfile, ReliabilityPolicy

            camera = Camera(client, topics.image_topic, compressed=args.soak,
                            qos=QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE) if args.reliable else None)
            instructions = client.instruction_publisher(topics)
            camera.wait_for_subscriber()
            model_name, device = status.get("model", ""), status.get("device", "")
            messages = [camera.message(f) for f in frames]
            from find_ros.nodes.instruction_msgs import build_instruction

            for k, text in enumerate(texts):
                instructions.publish(build_instruction(text, instruction_id="bench" if k == 0 else f"bench-{k}"))
            client.spin_until(lambda: int(status.get("instructions_active", 0) or 0) >= len(texts), 60)

            # Warm-up: until the first result of every instruction (model caches, allocator), not counted.
            i = 0
            deadline = time.monotonic() + 180
            while len(result_stamps) < len(texts) and time.monotonic() < deadline:
                camera.publish(messages[i % len(messages)])
                i += 1
                client.spin_for(1 / args.hz)
            rss_start = resident_mb(graph.pid)
            result_stamps.clear()
            result_times.clear()
            spans.clear()
            start_counts = {k: int(status.get(k, 0) or 0) for k in ("frames_dropped", "frames_received", "frames_processed")}
            if args.soak:
                figures = soak(args, client, camera, instructions, messages, frames[0], result_stamps, result_times,
                               answers, graph.pid, rss_start, start_counts)
            else:
                direct = ModelOnly(args.model, device, frames, texts)
                figures = steady(args, client, camera, messages, result_stamps, result_times, graph.pid, rss_start,
                                 start_counts, len(texts), spans, direct)
                processed = next(f for f in figures if f["figure"] == "processed_fps")
                figures += direct.figures(processed["value"], processed.pop("phase_fps"))
        finally:
            client.close()
            stop_process(graph)

    common = {"model": model_name, "device": device, "camera_hz": args.hz, "resolution": f"{width}x{height}",
              "mode": "soak" if args.soak else "steady", "instructions": len(texts)}
    for figure in figures:
        line = {**figure, **common}
        print(json.dumps(line) if args.json else f"{line['figure']:24s} {line['value']} {line['unit']}", flush=True)


class ModelOnly:
    """FindModel called directly on the same frames and instructions as the node got: what the
    node does per frame (encode_image, then ground_many over every instruction), without ROS,
    in phases between the camera's. Frames with only the first instruction alternate with them,
    so the cost of the other instructions is a ratio taken in one process under the same load."""

    def __init__(self, model_dir: str, device: str, frames: list[np.ndarray], texts: list[str]) -> None:
        import torch

        from find_ros.model import FindModel, resolve_model_dir

        self._torch = torch
        self.model = FindModel.from_pretrained(resolve_model_dir(model_dir or None), device=device or "auto").eval()
        self.frames = frames
        self.several = len(texts) > 1
        with torch.inference_mode():  # as the node's engine calls it (find_ros.nodes.engine)
            encoded = [self.model.encode_instruction(t) for t in texts]
            self.every, self.first = self.model.batch_instructions(encoded), self.model.batch_instructions(encoded[:1])
            for rgb in frames[:3]:  # warm-up, as the node's first frames
                self.model.ground_many(self.model.encode_image(rgb), self.every)
        self.per_frame: list[float] = []  # ms, every instruction
        self.one: list[float] = []        # ms, the first instruction alone
        self.phase_fps: list[float] = []  # each phase's own rate, every instruction

    def run(self, seconds: float) -> None:
        """One model-only phase of ``seconds``."""
        began, before = time.monotonic(), len(self.per_frame)
        with self._torch.inference_mode():
            while time.monotonic() - began < seconds:
                for batch, times in ((self.every, self.per_frame), (self.first, self.one)) if self.several else \
                        ((self.every, self.per_frame),):
                    t0 = time.perf_counter()
                    self.model.ground_many(self.model.encode_image(self.frames[len(self.per_frame) % len(self.frames)]), batch)
                    times.append((time.perf_counter() - t0) * 1e3)
        self.phase_fps.append(1e3 / float(np.mean(self.per_frame[before:])))

    def figures(self, e2e_fps: float, e2e_phase_fps: list[float]) -> list[dict]:
        """The model-only figures beside the end-to-end rate of the whole window and of each
        camera phase: per round, a camera phase's rate over the model-only phase that followed it
        (the spread of those ratios is the machine's drift within one run)."""
        fps = 1e3 / float(np.mean(self.per_frame))
        rounds = [round(e / m, 4) for e, m in zip(e2e_phase_fps, self.phase_fps, strict=True) if e and m]
        lines = [
            {"figure": "model_only_fps", "value": round(fps, 2), "unit": "Hz", "frames": len(self.per_frame),
             "frame_ms_p50": percentile(self.per_frame, 50), "frame_ms_p95": percentile(self.per_frame, 95)},
            {"figure": "e2e_over_model", "value": round(e2e_fps / fps, 4) if fps else None, "unit": "ratio",
             "per_round": rounds, "round_mean": round(float(np.mean(rounds)), 4) if rounds else None,
             "round_sd": round(float(np.std(rounds, ddof=1)), 4) if len(rounds) > 1 else None,
             "baseline": "model_only_fps (FindModel called directly on the same frames and instructions, "
                         "in phases alternating with the camera's)"},
        ]
        if self.one:
            lines.append({"figure": "frame_ms_vs_one_instruction",
                          "value": round(float(np.median(self.per_frame) / np.median(self.one)), 3), "unit": "ratio",
                          "frame_ms_p50": percentile(self.per_frame, 50), "one_instruction_ms_p50": percentile(self.one, 50),
                          "baseline": "model-only frames with the first instruction alone, alternating with these"})
        return lines


def steady(args: argparse.Namespace, client: Any, camera: Any, messages: list[Any], result_stamps: list[int],
           result_times: list[int], pid: int, rss_start: float, start: dict[str, int], per_frame: int,
           spans: list[tuple[float, ...]], direct: ModelOnly) -> list[dict]:
    from find_ros.nodes.graph_client import resident_mb

    sent = 0
    period = 1 / args.hz
    phases: list[tuple[int, int]] = []  # stamps (ns) of each camera phase's first and last frame
    cpu_used: dict[str, float] = {}
    elapsed = 0.0
    for _ in range(args.rounds):
        cpu_before = {"node": thread_cpu_s(pid), "camera": thread_cpu_s(os.getpid())}
        began, count = time.monotonic(), 0
        first = last = 0
        while time.monotonic() - began < args.seconds / args.rounds:
            last = camera.publish(messages[sent % len(messages)])
            first = first or last
            sent += 1
            count += 1
            client.spin_for(max(0.0, began + count * period - time.monotonic()))
        phase_s = time.monotonic() - began
        elapsed += phase_s
        for key, used in cpu_seconds(pid, cpu_before).items():
            cpu_used[key] = cpu_used.get(key, 0.0) + used
        phases.append((first, last))
        # The node finishes the phase's last frame (or that frame was lost), then waits idle.
        client.spin_until(lambda: result_stamps[-per_frame:].count(last) >= per_frame, 2.0)
        direct.run(args.model_seconds / args.rounds)
    cpu = {key: round(used / elapsed, 3) for key, used in cpu_used.items()}
    client.spin_for(2.5)  # the last results and one more diagnostics period
    status = client.status["find_grounding"]
    dropped = int(status.get("frames_dropped", 0) or 0) - start["frames_dropped"]
    received = int(status.get("frames_received", 0) or 0) - start["frames_received"]
    # Results for frames of the camera phases only (a warm-up frame may be answered after the
    # warm-up ended); the three lists are filled together, in order.
    results = [(stamp, arrived, span) for stamp, arrived, span in zip(result_stamps, result_times, spans)
               if any(first <= stamp <= last for first, last in phases)]
    # A frame is processed when every instruction's result arrived; its latency is the last one's.
    answered: dict[int, list[int]] = {}
    for stamp, arrived, _ in results:
        answered.setdefault(stamp, []).append(arrived)
    done = {stamp: max(times) for stamp, times in answered.items() if len(times) >= per_frame}
    latencies = [(t - s) / 1e6 for s, t in done.items()]
    fps = steady_rate(done, phases)
    phase_fps = [steady_rate(done, [phase]) for phase in phases]
    p95 = percentile(latencies, 95)
    names = ("decode", "vision", "interface", "postprocess", "queue")
    medians = {n: round(float(np.median([r[2][k] for r in results])), 2) if results else None for k, n in enumerate(names)}
    p50 = percentile(latencies, 50)
    if results:  # per result: its latency minus the node's spans for it
        medians["other"] = round(float(np.median([(t - s) / 1e6 - sum(span) for s, t, span in results])), 2)
    return [
        {"figure": "processed_fps", "value": round(fps, 2), "unit": "Hz", "ratio": round(fps / args.hz, 4), "baseline": "camera rate",
         "seconds": round(elapsed, 1), "frames_sent": sent, "rounds": args.rounds, "frames_answered": len(done),
         "phase_fps": phase_fps},
        {"figure": "latency_ms_p50", "value": p50, "unit": "ms"},
        {"figure": "latency_ms_p95", "value": p95, "unit": "ms"},
        {"figure": "latency_p95_frame_periods", "value": round(p95 * fps / 1e3, 2) if p95 is not None else None,
         "unit": "periods", "baseline": "1 / processed_fps"},
        {"figure": "spans_ms_p50", "value": medians.get("other"), "unit": "ms", **medians,
         "baseline": "value = other: per result, latency minus the node's own spans (median)"},
        {"figure": "frames_received", "value": received, "unit": "frames", "ratio": round(received / sent, 4) if sent else None,
         "baseline": "frames sent (best effort: the rest were lost in DDS transport)"},
        {"figure": "frames_dropped", "value": dropped, "unit": "frames",
         "ratio": round(dropped / received, 4) if received else None, "baseline": "frames received by the node"},
        {"figure": "rss_mb_start", "value": round(rss_start, 1), "unit": "MiB"},
        {"figure": "rss_mb_end", "value": round(resident_mb(pid), 1), "unit": "MiB"},
        {"figure": "cpu_cores_model", "value": cpu["node_workers"], "unit": "cores", **cpu, "cores": os.cpu_count(),
         "baseline": "CPU seconds per second of the measured window (/proc/PID/task): the perception process's "
                     "main thread (the executor: every message callback), its DDS threads, its other threads (the "
                     "frame worker, torch's threads, the executor's pool), and this process (the camera)"},
    ]


def thread_cpu_s(pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) of each thread of a process, by thread id, with its name."""
    ticks = os.sysconf("SC_CLK_TCK")
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        threads[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / ticks)  # utime, stime
    return threads


def cpu_seconds(pid: int, before: dict[str, dict[int, tuple[str, float]]]) -> dict[str, float]:
    """CPU seconds used since ``before`` (thread_cpu_s of the node and of this process): the node's
    main thread, its DDS threads, its other threads, and the camera."""
    used = dict.fromkeys(("node_main_thread", "node_dds", "node_workers", "camera_process"), 0.0)
    for who, process in (("node", pid), ("camera", os.getpid())):
        for tid, (name, cpu_s) in thread_cpu_s(process).items():
            spent = cpu_s - before[who].get(tid, (name, 0.0))[1]
            if who == "camera":
                key = "camera_process"
            else:
                key = "node_main_thread" if tid == pid else "node_dds" if name.startswith("dds.") else "node_workers"
            used[key] += spent
    return used


def steady_rate(done: dict[int, int], phases: list[tuple[int, int]]) -> float:
    """Frames answered per second in steady state: over the camera phases (stamps ``first..last``),
    the answers after each phase's first divided by the time from its first answer to its last."""
    answers, span_ns = 0, 0
    for first, last in phases:
        times = sorted(t for stamp, t in done.items() if first <= stamp <= last)
        if len(times) >= 2:
            answers += len(times) - 1
            span_ns += times[-1] - times[0]
    return answers / (span_ns / 1e9) if span_ns else 0.0


def soak(args: argparse.Namespace, client: Any, camera: Any, instructions: Any, messages: list[Any], sample: np.ndarray,
         result_stamps: list[int], result_times: list[int], answers: list[Any], pid: int, rss_start: float,
         start: dict[str, int]) -> list[dict]:
    from find_ros_msgs.msg import InstructionStatus

    from find_ros.nodes.bad_input import malformed_compressed_frames
    from find_ros.nodes.graph_client import resident_mb
    from find_ros.nodes.instruction_msgs import build_cancel, build_instruction

    malformed = malformed_compressed_frames(sample)
    period = 1 / args.hz
    sent: dict[str, list[int]] = {"valid": [], "bomb": [], "malformed": []}
    minute_rss: list[float] = []
    kept: list[str] = ["bench"]
    churn = 0
    began = time.monotonic()
    index = 0
    while (now := time.monotonic() - began) < args.duration:
        if index % 10 == 9:  # 3 in every 30 frames malformed, in turn
            reason, msg = malformed[(index // 10) % len(malformed)]
            sent["bomb" if "exceeds the limit" in reason else "malformed"].append(camera.publish(msg))
        else:
            sent["valid"].append(camera.publish(messages[index % len(messages)]))
        index += 1
        if now >= 2.0 * (churn + 1):  # instruction churn
            churn += 1
            if churn % 5 == 0:
                instructions.publish(build_instruction(" ".join(["cup"] * 400), instruction_id=f"too-long-{churn}"))
            else:
                instructions.publish(build_instruction(f"[object number {churn}]", instruction_id=f"churn-{churn}"))
                kept.append(f"churn-{churn}")
                if len(kept) > 3:
                    instructions.publish(build_cancel(kept.pop(0)))
        if now >= 60.0 * len(minute_rss):
            minute_rss.append(resident_mb(pid))
        client.spin_for(max(0.0, began + index * period - time.monotonic()))
    elapsed = time.monotonic() - began
    client.spin_for(2.5)
    rss_end = resident_mb(pid)
    status = dict(client.status["find_grounding"])
    probe = bomb_probe(client, camera, messages[0], malformed[0][1], result_stamps, result_times)

    figures: list[dict] = [{"figure": "soak_seconds", "value": round(elapsed, 1), "unit": "s", "frames_sent": index,
                            "valid": len(sent["valid"]), "bombs": len(sent["bomb"]), "malformed": len(sent["malformed"])}]
    first = sent["valid"][0] if sent["valid"] else 0
    for minute in range(max(1, int(np.ceil(elapsed / 60.0 - 0.01)))):
        lo, hi = first + minute * 60 * 10**9, first + (minute + 1) * 60 * 10**9
        latencies = [(t - s) / 1e6 for s, t in zip(result_stamps, result_times) if lo <= s < hi]
        figures.append({"figure": "latency_ms_minute", "minute": minute, "p50": percentile(latencies, 50),
                        "p95": percentile(latencies, 95), "value": percentile(latencies, 50), "unit": "ms",
                        "results": len(latencies),
                        "rss_mb": round(minute_rss[minute], 1) if minute < len(minute_rss) else None})
    for name in ("frames_received", "frames_processed", "frames_dropped"):
        figures.append({"figure": name, "value": int(status.get(name, 0) or 0) - start[name], "unit": "frames"})
    for name in ("frames_bad", "frames_too_large", "instructions_active", "instructions_rejected", "instructions_cancelled"):
        figures.append({"figure": name, "value": int(status.get(name, 0) or 0), "unit": "count"})
    answered = {label: sum(a.status == code for a in answers) for label, code in (
        ("accepted", InstructionStatus.ACCEPTED), ("refused", InstructionStatus.REFUSED),
        ("cancelled", InstructionStatus.CANCELLED), ("failed", InstructionStatus.FAILED))}
    figures.append({"figure": "instruction_answers", "value": sum(answered.values()), "unit": "messages", **answered})
    after_valid = next_answer_ms(sent["valid"], result_stamps, result_times)
    after_bomb = next_answer_ms(sent["bomb"], result_stamps, result_times)
    figures.append({"figure": "next_answer_ms_after_valid", "value": percentile(after_valid, 50), "p95": percentile(after_valid, 95),
                    "max": round(max(after_valid), 1) if after_valid else None, "unit": "ms", "frames": len(after_valid)})
    figures.append({"figure": "next_answer_ms_after_bomb", "value": percentile(after_bomb, 50), "p95": percentile(after_bomb, 95),
                    "max": round(max(after_bomb), 1) if after_bomb else None, "unit": "ms", "frames": len(after_bomb),
                    "baseline": "next_answer_ms_after_valid; a frame period is %.1f ms" % (1e3 * period)})
    figures.append({"figure": "rss_mb_start", "value": round(rss_start, 1), "unit": "MiB"})
    figures.append({"figure": "rss_mb_end", "value": round(rss_end, 1), "unit": "MiB",
                    "ratio": round(rss_end / rss_start, 4), "baseline": "rss_mb_start"})
    valid, after = probe["valid_ms"], probe["after_bomb_ms"]
    figures.append({"figure": "bomb_probe_latency_ms", "value": percentile(after, 50), "p95": percentile(after, 95),
                    "unit": "ms", "rounds": len(after), "baseline_p50": percentile(valid, 50), "baseline_p95": percentile(valid, 95),
                    "baseline": "latency of a valid frame in the same lockstep probe, without a bomb before it",
                    "extra_frame_periods_p50": (round((percentile(after, 50) - percentile(valid, 50)) / (1e3 * period), 2)
                                                if after and valid else None),
                    "rss_mb_before": probe["rss_before"], "rss_mb_after": probe["rss_after"]})
    return figures


def bomb_probe(client: Any, camera: Any, valid_msg: Any, bomb_msg: Any, result_stamps: list[int],
               result_times: list[int], rounds: int = 10) -> dict[str, Any]:
    """Lockstep: a valid frame alone, then a bomb the node has refused (waited for on /diagnostics)
    followed by a valid frame; the two valid frames' latencies say what the bomb cost. Each frame's
    results for every active instruction are awaited, so each frame finds the worker idle."""
    from find_ros.nodes.graph_client import resident_mb

    status = client.status["find_grounding"]
    per_frame = max(1, int(status.get("instructions_active", 1) or 1))

    def latency_of(stamp: int) -> float | None:
        if not client.spin_until(lambda: result_stamps[-3 * per_frame:].count(stamp) >= per_frame, 60):
            return None
        return (result_times[result_stamps.index(stamp)] - stamp) / 1e6

    pid = client.graph.pid if client.graph is not None else None
    out: dict[str, Any] = {"valid_ms": [], "after_bomb_ms": [], "rss_before": round(resident_mb(pid), 1) if pid else None}
    for _ in range(rounds):
        alone = latency_of(camera.publish(valid_msg))
        refused = int(status.get("frames_too_large", 0) or 0)
        camera.publish(bomb_msg)
        if not client.spin_until(lambda: int(status.get("frames_too_large", 0) or 0) > refused, 30):
            continue  # the bomb was replaced before the worker took it: nothing to measure this round
        after = latency_of(camera.publish(valid_msg))
        if alone is not None and after is not None:
            out["valid_ms"].append(alone)
            out["after_bomb_ms"].append(after)
    out["rss_after"] = round(resident_mb(pid), 1) if pid else None
    return out


if __name__ == "__main__":
    sys.exit(main())
