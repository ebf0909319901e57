"""Fixtures of the synthetic-world tests: one small dataset and one small trajectory per session,
rendered at 160x120 so the whole directory runs in well under a few minutes on two cores."""

from __future__ import annotations

from pathlib import Path

import pytest

from scene_settings import DATASET_IMAGES, DATASET_SEED, DATASET_SPLITS, SIZE, TRAJECTORY_FRAMES, TRAJECTORY_SEED


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from find_ros.scenes import make_dataset

    out = tmp_path_factory.mktemp("scenes") / "dataset"
    make_dataset(out, DATASET_IMAGES, DATASET_SEED, splits=DATASET_SPLITS, size=SIZE, progress=False)
    return out


@pytest.fixture(scope="session")
def trajectory_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from find_ros.scenes import make_trajectory

    out = tmp_path_factory.mktemp("scenes") / "trajectory"
    make_trajectory(out, TRAJECTORY_FRAMES, TRAJECTORY_SEED, size=SIZE, progress=False)
    return out
