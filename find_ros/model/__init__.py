"""FIND for find_ros: frozen foundation models + a trained interface (the API: find.py; building
and loading: build.py; read-outs: readout.py).

Imports torch and transformers only (never rclpy or nerfstudio).
"""

from __future__ import annotations

import os
from pathlib import Path

from find_ros.model.config import FindConfig, tiny_config
from find_ros.model.embeddings import (
    ImageEmbeddings,
    InstructionEmbeddings,
    RegionRef,
    SpatialPrompt,
    TokenSet,
    VisualClass,
)
from find_ros.model.find import FindModel, TaskOutput
from find_ros.model.prototypes import (
    PromptSpec,
    QuerySpec,
    ReadoutSpec,
    TaskPrototype,
    get_prototype,
    list_prototypes,
    register_prototype,
    unregister_prototype,
)
from find_ros.model.results import (
    EntityMask,
    GroundingResult,
    Instance,
    RetrievalResult,
    Segment,
    SegmentationResult,
)

# Where the training issue ships the trained model: a directory with config.json inside the package.
PACKAGED_MODEL_DIR = Path(__file__).resolve().parents[1] / "default_model"
MODEL_ENV = "FIND_ROS_MODEL"


def default_model_dir() -> Path | None:
    """The trained model to use when none is named: $FIND_ROS_MODEL, else find_ros/default_model/
    once it exists; None until then (callers fall back to a labelled UNTRAINED placeholder)."""
    for candidate in (os.environ.get(MODEL_ENV), PACKAGED_MODEL_DIR):
        if candidate and (Path(candidate) / "config.json").is_file():
            return Path(candidate)
    return None


def resolve_model_dir(model: str | Path | None = None) -> Path:
    """``model`` if given, else :func:`default_model_dir`, else the untrained placeholder (built
    into the cache on first use). Check ``FindModel.untrained`` before presenting outputs."""
    if model is not None:
        return Path(model)
    found = default_model_dir()
    if found is not None:
        return found
    from find_ros.model.tiny import untrained_model_dir

    return untrained_model_dir()


__all__ = [
    "EntityMask", "FindConfig", "FindModel", "GroundingResult", "ImageEmbeddings", "Instance",
    "InstructionEmbeddings", "PromptSpec", "QuerySpec", "ReadoutSpec", "RegionRef", "RetrievalResult", "Segment",
    "SegmentationResult", "SpatialPrompt", "TaskOutput", "TaskPrototype", "TokenSet", "VisualClass",
    "default_model_dir", "get_prototype", "list_prototypes", "register_prototype", "resolve_model_dir",
    "tiny_config", "unregister_prototype",
]
