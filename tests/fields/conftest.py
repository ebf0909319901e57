"""Fixtures of the feature-field tests: a tiny random FIND model, a tiny synthetic trajectory
(6 frames at 96x72), and real `ns-train find-field` runs on it (small hash grids, few rays, few
samples) sharing one teacher cache, so the whole directory runs in a few minutes on two cores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from field_settings import FRAMES, SEED, SIZE, Run, ns_train, teacher_files

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(1)  # two shared cores: one thread avoids waiting on a busy second core


@pytest.fixture(scope="session")
def field_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fields")


@pytest.fixture(scope="session")
def tiny_find(field_root: Path) -> Path:
    from find_ros.model.tiny import build_tiny_model

    return build_tiny_model(field_root / "find")


@pytest.fixture(scope="session")
def scene(field_root: Path) -> Path:
    from find_ros.scenes import make_trajectory

    make_trajectory(field_root / "scene", FRAMES, SEED, size=SIZE, progress=False)
    return field_root / "scene"


@pytest.fixture(scope="session")
def field_env(field_root: Path) -> dict[str, str]:
    """The environment of every field subprocess: a private package cache (teacher cache inside)."""
    return {**os.environ, "FIND_ROS_CACHE": str(field_root / "cache"), "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1", "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="session")
def first_run(field_root: Path, field_env: dict[str, str], tiny_find: Path, scene: Path) -> Run:
    return ns_train(field_root, field_env, tiny_find, scene, "first")


@pytest.fixture(scope="session")
def second_run(first_run: Run, field_root: Path, field_env: dict[str, str], tiny_find: Path, scene: Path
               ) -> tuple[Run, dict[Path, bytes], dict[Path, bytes]]:
    """A second training run on the same images, without depth supervision; with the teacher cache
    before and after it."""
    before = teacher_files(field_root)
    run = ns_train(field_root, field_env, tiny_find, scene, "second", "--pipeline.datamanager.load-depth", "False")
    return run, before, teacher_files(field_root)


@pytest.fixture(scope="session")
def dense_run(second_run: tuple, field_root: Path, field_env: dict[str, str], tiny_find: Path, scene: Path) -> Run:
    """A run with the dense teacher (after the two crops-teacher runs, which share their cache)."""
    return ns_train(field_root, field_env, tiny_find, scene, "dense", "--pipeline.model.teacher", "dense")
