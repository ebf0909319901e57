"""Fixtures for node tests: a perception process and a test-side client (tiny_model_dir: tests/conftest.py).

The perception graph runs as `find-ros perception` in its own process, as on a robot; the test talks
to it over real DDS (loopback only, the suite's private domain) through find_ros.nodes.graph_client,
the same client the demo and the benchmark use. Every count a test asserts is of messages sent on
reliable QoS or waited for one by one, never of best-effort deliveries.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from find_ros.nodes.graph_client import NODE_NAMES, GraphClient, start_perception, stop_process

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture()
def peer() -> Iterator[GraphClient]:
    client = GraphClient("test_peer")
    yield client
    client.close()


@pytest.fixture()
def perception(tmp_path: Path, tiny_model_dir: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start `find-ros perception` with the tiny model and parameter overrides; stopped at the end."""
    started: list[subprocess.Popen] = []

    def start(nodes: str = "grounding", **overrides: Any) -> subprocess.Popen:
        values = {"model": str(tiny_model_dir), "diagnostics_period_s": 0.5, **overrides}
        process = start_perception({name: dict(values) for name in NODE_NAMES.values()}, tmp_path, nodes)
        started.append(process)
        return process

    yield start
    for process in started:
        out = stop_process(process, timeout_s=20)
        if out:
            print(out[-4000:])


def wait_active(peer: GraphClient, process: subprocess.Popen, node: str = "find_grounding", timeout_s: float = 60.0) -> None:
    """Until ``node`` says on /diagnostics that it is active (the model loaded)."""
    peer.graph = process
    peer.watch_diagnostics()
    peer.wait_active([node], timeout_s)


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
