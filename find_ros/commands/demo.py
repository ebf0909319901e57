"""`find-ros demo`: the README's main job (`make demo`).

Today it proves the transport the perception graph is built on: an interleaved instruction with two
image crops crosses DDS (loopback only, private domain) from one process to a subscriber node in
another, and every field arrives intact. It grows into the full perception demo as the nodes land.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _demo_crops() -> list[np.ndarray]:
    """Two small pictures with content that survives a round trip only if every byte does."""
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8), rng.integers(0, 256, size=(32, 40, 3), dtype=np.uint8)]


def run(args: argparse.Namespace) -> int:
    from rclpy.serialization import deserialize_message
    from find_ros_msgs.msg import Instruction

    from find_ros.nodes.images import image_msg_to_rgb
    from find_ros.nodes.instruction_msgs import build_instruction
    from find_ros.nodes.qos import INSTRUCTION_PUBLISHER
    from find_ros.nodes.topic_tools import publish_when_matched
    from find_ros.ros_env import isolate_dds

    domain = isolate_dds()
    topic = "/find_ros/demo/instruction"
    crops = _demo_crops()
    sent = build_instruction("[the red mug] left of <0> and behind <1>", crops, instruction_id="demo-1", want_localization=True)
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "received.cdr"
        print(f"[demo] DDS on loopback, domain {domain}; starting a receiver process on {topic}")
        receiver = subprocess.Popen(
            [sys.executable, "-m", "find_ros.cli", "echo", topic, "--save", str(saved), "--timeout", "60"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        start = time.monotonic()
        publish_when_matched(topic, sent, INSTRUCTION_PUBLISHER, timeout_s=60)
        output, _ = receiver.communicate(timeout=90)
        if receiver.returncode != 0:
            print(output)
            print("[demo] the receiver did not get the instruction")
            return 1
        received = deserialize_message(saved.read_bytes(), Instruction)
        elapsed = time.monotonic() - start
    print(output.rstrip())
    intact = received == sent and all(
        np.array_equal(image_msg_to_rgb(r.crop), c) for r, c in zip(received.visual_entities, crops)
    )
    print(f"[demo] round trip {elapsed:.2f} s; every field intact: {intact}")
    return 0 if intact else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="the README's main job")
    parser.set_defaults(func=run)
