"""Fixtures of the data-engine tests: a toy COCO-panoptic dataset and a local chat-completions server.

The dataset is written by ``training.data_engine.toy`` (numpy + cv2) into the test's temp dir, so
these tests do not depend on the synthetic world; ``test_data_engine_scenes.py`` checks the engine
on ``find_ros.scenes`` exports as well. The server is in ``de_chat_server.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
for p in (REPO, HERE):  # `training` is a directory of the repo; de_chat_server sits next to this file
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from de_chat_server import ChatServer, Reply  # noqa: E402
from training.data_engine.toy import ToyDataset, write_toy_dataset  # noqa: E402


@pytest.fixture
def toy(tmp_path: Path) -> ToyDataset:
    return write_toy_dataset(tmp_path / "toy", n_images=6, seed=3)


@pytest.fixture
def chat_server() -> Iterator[Callable[[Callable[[int, int, dict], Reply]], ChatServer]]:
    servers: list[ChatServer] = []

    def start(script: Callable[[int, int, dict], Reply]) -> ChatServer:
        s = ChatServer(script).__enter__()
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.__exit__(None, None, None)
