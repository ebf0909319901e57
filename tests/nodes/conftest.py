"""Fixtures for node tests: a perception process and a test-side node (tiny_model_dir: tests/conftest.py).

The perception graph runs as `find-ros perception` in its own process, as on a robot; the test talks
to it over real DDS (loopback only, the suite's private domain).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rclpy
import yaml
from rclpy.executors import SingleThreadedExecutor

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class Peer:
    """The test's side of the graph: one node, its executor, and helpers to wait for things."""

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("test_peer", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def collect(self, msg_type: type, topic: str, qos: Any = 10) -> list[Any]:
        received: list[Any] = []
        self.node.create_subscription(msg_type, topic, received.append, qos)
        return received

    def spin_until(self, condition: Callable[[], bool], timeout_s: float, step: Callable[[], None] | None = None) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if step is not None:
                step()
            self.executor.spin_once(timeout_sec=0.05)
            if condition():
                return True
        return condition()

    def close(self) -> None:
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture()
def peer() -> Iterator[Peer]:
    p = Peer()
    yield p
    p.close()


@pytest.fixture()
def perception(tmp_path: Path, tiny_model_dir: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start `find-ros perception` with the tiny model and parameter overrides; stopped at the end."""
    started: list[subprocess.Popen] = []

    def start(nodes: str = "grounding", **overrides: Any) -> subprocess.Popen:
        params: dict[str, Any] = {}
        for name in ("find_grounding", "find_localization"):
            params[name] = {"ros__parameters": {"model": str(tiny_model_dir), "diagnostics_period_s": 0.5, **overrides}}
        path = tmp_path / "params.yaml"
        path.write_text(yaml.safe_dump(params))
        process = subprocess.Popen(
            [sys.executable, "-m", "find_ros.cli", "perception", "--params", str(path), "--nodes", nodes],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.terminate()
        try:
            out = process.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            process.kill()
            out = process.communicate()[0]
        if out:
            print(out[-4000:])


def frame(seed: int, height: int = 60, width: int = 80) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def diagnostics_text(arrays: list[Any]) -> str:
    """Every status message and value of the received DiagnosticArrays, as one searchable string."""
    parts = []
    for array in arrays:
        for status in array.status:
            parts.append(status.message)
            parts.extend(f"{kv.key}={kv.value}" for kv in status.values)
    return "\n".join(parts)
