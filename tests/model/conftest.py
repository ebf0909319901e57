"""Tiny random FIND models for the model tests (built once per session, loaded through from_pretrained)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)  # two shared cores; tiny models gain nothing from threads


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FocalNet-family vision + BERT-style language, both random and tiny, self-contained."""
    from find_ros.model.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def model(tiny_dir: Path):
    """A shared eval-mode model: tests must not train or modify it."""
    from find_ros.model import FindModel

    return FindModel.from_pretrained(tiny_dir, device="cpu")


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(48, 80, 3), dtype=np.uint8)


@pytest.fixture
def crop() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, size=(20, 24, 3), dtype=np.uint8)
