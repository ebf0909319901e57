"""Shared fixtures for the training tests: a small synthetic dataset and a tiny random FIND model,
built once per session (a few seconds). Helpers live in training_helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from find_ros.scenes import make_dataset

    out = tmp_path_factory.mktemp("synthetic") / "ds"
    make_dataset(out, 8, seed=3, splits=("train", "val"), size=(96, 72), progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from find_ros.model.tiny import build_tiny_model

    path = tmp_path_factory.mktemp("tiny") / "model"
    # Random tiny FocalNet + tiny BERT (with MiniLM's tokenizer): real code paths, fast steps.
    build_tiny_model(path, vision="focalnet", language="bert", seed=0, input_size=96, num_object_queries=8)
    return path
