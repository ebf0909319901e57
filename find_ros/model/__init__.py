"""FIND for find_ros: frozen foundation models + a trained interface (the API: find.py; building
and loading: build.py; read-outs: readout.py).

Imports torch and transformers only (never rclpy or nerfstudio), and those only when a module that
needs them is used.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

# Public names and the module that defines each. They load on first use (PEP 562), so plain-data
# modules (config, results, embeddings' values) and the CLI's option defaults import no torch.
_EXPORTS = {
    "FindConfig": "config", "tiny_config": "config",
    "ImageEmbeddings": "embeddings", "InstructionEmbeddings": "embeddings", "RegionRef": "embeddings",
    "SpatialPrompt": "embeddings", "TokenSet": "embeddings", "VisualClass": "embeddings",
    "FindModel": "find", "TaskOutput": "find",
    "PromptSpec": "prototypes", "QuerySpec": "prototypes", "ReadoutSpec": "prototypes",
    "TaskPrototype": "prototypes", "get_prototype": "prototypes", "list_prototypes": "prototypes",
    "register_prototype": "prototypes", "unregister_prototype": "prototypes",
    "EntityMask": "results", "GroundingResult": "results", "Instance": "results", "RetrievalResult": "results",
    "Segment": "results", "SegmentationResult": "results", "SegmentationSettings": "results",
}

def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


# The packaged trained model: a directory with config.json inside the package.
PACKAGED_MODEL_DIR = Path(__file__).resolve().parents[1] / "default_model"
MODEL_ENV = "FIND_ROS_MODEL"


def default_model_dir() -> Path | None:
    """The trained model to use when none is named: $FIND_ROS_MODEL, else find_ros/default_model/;
    None when neither has a config.json (callers fall back to a labelled UNTRAINED placeholder)."""
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


__all__ = sorted([*_EXPORTS, "default_model_dir", "resolve_model_dir"])
