"""Perception graph under a live camera: sustained FPS, end-to-end latency, drops and memory.

    python benchmarks/perception.py --json [--model DIR] [--seconds 60] [--hz 30] [--size 640x480]

The grounding node runs as `find-ros perception` in its own process, as on a robot. This process is
the camera: it publishes frames at --hz (best effort, stamped at publish time) and one instruction,
and receives the Grounding results over DDS (loopback, private domain). Figures, one JSON line each:

* processed_fps       results per second over the run; ``ratio`` is against the camera rate
* latency_ms_p50/p95  frame stamp -> result received here (loopback; includes DDS both ways)
* frames_received     frames that reached the node (best-effort transport may lose large frames)
* frames_dropped      frames the node replaced before processing (its diagnostics), and the fraction
* rss_mb_start/end    resident memory of the perception process after warm-up and at the end

Frames are a walk through one scene of the synthetic world (find_ros.scenes), the kind of image the
default model was trained on, replayed in a loop; --random uses noise frames instead.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="", help="model directory ('' = the default model)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--hz", type=float, default=30.0)
    parser.add_argument("--size", default="640x480", help="camera resolution WxH")
    parser.add_argument("--instruction", default="[the red sphere]")
    parser.add_argument("--random", action="store_true", help="noise frames instead of rendered ones")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    from find_ros.ros_env import isolate_dds

    isolate_dds()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import rclpy
    import yaml
    from diagnostic_msgs.msg import DiagnosticArray
    from find_ros_msgs.msg import Grounding, Instruction
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from find_ros.nodes.images import numpy_to_image_msg
    from find_ros.nodes.instruction_msgs import build_instruction
    from find_ros.nodes.qos import INSTRUCTION_PUBLISHER

    frames = camera_frames((width, height), 30, args.random)
    with tempfile.TemporaryDirectory() as tmp:
        params = Path(tmp) / "params.yaml"
        params.write_text(yaml.safe_dump({"find_grounding": {"ros__parameters": {
            "model": args.model, "publish_overlay": False, "diagnostics_period_s": 1.0}}}))
        node_process = subprocess.Popen(
            [sys.executable, "-m", "find_ros.cli", "perception", "--nodes", "grounding", "--params", str(params)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        context = rclpy.Context()
        rclpy.init(context=context)
        try:
            node = rclpy.create_node("camera_benchmark", context=context)
            executor = SingleThreadedExecutor(context=context)
            executor.add_node(node)
            latencies: list[float] = []
            results: list[float] = []
            status: dict[str, str] = {}

            def on_result(msg: Grounding) -> None:
                now = node.get_clock().now().nanoseconds
                results.append(time.monotonic())
                latencies.append((now - (msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)) / 1e6)

            def on_diag(msg: DiagnosticArray) -> None:
                for s in msg.status:
                    if s.name == "find_grounding":
                        status.update({kv.key: kv.value for kv in s.values})

            node.create_subscription(Grounding, "/find_ros/grounding", on_result, 10)
            node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
            camera = node.create_publisher(Image, "/camera/color/image_raw", qos_profile_sensor_data)
            instructions = node.create_publisher(Instruction, "/find_ros/instruction", INSTRUCTION_PUBLISHER)

            deadline = time.monotonic() + 180
            while status.get("state") != "active":
                if node_process.poll() is not None or time.monotonic() > deadline:
                    print(node_process.communicate()[0][-3000:], file=sys.stderr)
                    raise SystemExit("the perception process did not become active")
                executor.spin_once(timeout_sec=0.1)
            while camera.get_subscription_count() == 0 or instructions.get_subscription_count() == 0:
                executor.spin_once(timeout_sec=0.05)
            instructions.publish(build_instruction(args.instruction, instruction_id="bench"))
            model_name, device = status.get("model", ""), status.get("device", "")

            def publish(i: int) -> None:
                msg = numpy_to_image_msg(frames[i % len(frames)], "rgb8")
                msg.header.stamp = node.get_clock().now().to_msg()
                msg.header.frame_id = "camera"
                camera.publish(msg)

            # Warm-up: until the first result (model caches, allocator), not counted.
            i = 0
            while not results and time.monotonic() < deadline:
                publish(i)
                i += 1
                end = time.monotonic() + 1 / args.hz
                while time.monotonic() < end:
                    executor.spin_once(timeout_sec=max(0.0, end - time.monotonic()))
            rss_start = rss_mb(node_process.pid)
            results.clear()
            latencies.clear()
            start_dropped = int(status.get("frames_dropped", 0) or 0)
            start_received = int(status.get("frames_received", 0) or 0)
            sent = 0
            start = time.monotonic()
            period = 1 / args.hz
            while time.monotonic() - start < args.seconds:
                publish(sent)
                sent += 1
                next_at = start + sent * period
                while time.monotonic() < next_at:
                    executor.spin_once(timeout_sec=max(0.0, next_at - time.monotonic()))
            elapsed = time.monotonic() - start
            settle = time.monotonic() + 2.5  # the last results and one more diagnostics period
            while time.monotonic() < settle:
                executor.spin_once(timeout_sec=0.05)
            rss_end = rss_mb(node_process.pid)
            dropped = int(status.get("frames_dropped", 0) or 0) - start_dropped
            received = int(status.get("frames_received", 0) or 0) - start_received
        finally:
            rclpy.shutdown(context=context)
            node_process.terminate()
            node_process.communicate(timeout=30)

    lat = np.array(latencies) if latencies else np.array([np.nan])
    common = {"model": model_name, "device": device, "camera_hz": args.hz, "seconds": round(elapsed, 1),
              "resolution": f"{width}x{height}", "frames_sent": sent}
    fps = len(results) / elapsed
    figures = [
        {"figure": "processed_fps", "value": round(fps, 2), "unit": "Hz", "ratio": round(fps / args.hz, 4), "baseline": "camera rate"},
        {"figure": "latency_ms_p50", "value": round(float(np.percentile(lat, 50)), 1), "unit": "ms"},
        {"figure": "latency_ms_p95", "value": round(float(np.percentile(lat, 95)), 1), "unit": "ms"},
        {"figure": "frames_received", "value": received, "unit": "frames", "ratio": round(received / sent, 4) if sent else None,
         "baseline": "frames sent (best effort: the rest were lost in DDS transport)"},
        {"figure": "frames_dropped", "value": dropped, "unit": "frames",
         "ratio": round(dropped / received, 4) if received else None, "baseline": "frames received by the node"},
        {"figure": "rss_mb_start", "value": round(rss_start, 1), "unit": "MiB"},
        {"figure": "rss_mb_end", "value": round(rss_end, 1), "unit": "MiB"},
    ]
    for figure in figures:
        line = {**figure, **common}
        print(json.dumps(line) if args.json else f"{line['figure']:16s} {line['value']} {line['unit']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
