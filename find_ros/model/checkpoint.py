"""Checkpoint files: ``config.json`` (a :class:`FindConfig`, naming the encoders) and
``model.safetensors`` (the trainable weights only: neck, sampler, interface, heads). The frozen
encoders load from their own ``from_pretrained`` directories — optionally copied into the model
directory as ``vision/`` and ``language/`` so it is self-contained.

Weights are read with safetensors only: no pickle, no torch.load.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from torch import Tensor

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
VISION_DIR = "vision"
LANGUAGE_DIR = "language"
FROZEN_PREFIXES = ("vision_encoder.", "language_encoder.")


def trainable_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {k: v for k, v in state.items() if not k.startswith(FROZEN_PREFIXES)}


def save_weights(state: Mapping[str, Tensor], path: str | Path) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(path), metadata={"format": "pt"})
    return path


def load_weights(path: str | Path) -> dict[str, Tensor]:
    """Read a safetensors file; a missing, truncated or foreign file gives a ValueError naming it."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model weights not found: {path}")
    try:
        return load_file(str(path))
    except Exception as error:  # noqa: BLE001 - safetensors raises its own error type, or OSError
        raise ValueError(f"{path}: corrupt or not a safetensors file ({error})") from error


def check_state(expected: Mapping[str, Tensor], given: Mapping[str, Tensor], source: str) -> None:
    """Same keys and shapes, or a ValueError that lists the differences."""
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    shapes = [f"{k}: {tuple(given[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
              if k in given and tuple(given[k].shape) != tuple(v.shape)]
    problems = []
    for title, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
        if items:
            problems.append(f"{title}: {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}")
    if problems:
        raise ValueError(f"{source} does not fit this model config ({'; '.join(problems)})")

