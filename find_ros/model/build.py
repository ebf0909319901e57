"""Building a FindModel: from a config (fresh interface) or a model directory, onto a device and
dtype, and back into a directory — what Segment Anything keeps in ``build_sam.py``.

A model directory is ``config.json`` + ``model.safetensors`` (:mod:`find_ros.model.checkpoint`);
the frozen encoders load from the places the config names. ``FindModel.from_pretrained``,
``FindModel.from_config``, ``save_pretrained`` and ``place`` are this module's functions.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from find_ros.model import checkpoint
from find_ros.model.config import FindConfig
from find_ros.model.encoders import PACKAGED_MODELS, load_language_encoder, load_vision_encoder, quiet_transformers, resolve_model_source
from find_ros.model.find import FindModel

DTYPE_NAMES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
               "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: CUDA when present, else the CPU; anything else as torch names it, checked."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"unknown device {str(device)!r}: {error}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; use 'auto' or 'cpu'")
    return device


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``None``: bf16 on a GPU that has it (else fp16), fp32 on the CPU; names as in DTYPE_NAMES."""
    if dtype is None:
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if isinstance(dtype, str):
        if dtype not in DTYPE_NAMES:
            raise ValueError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPE_NAMES)}")
        dtype = DTYPE_NAMES[dtype]
    if device.type == "cpu" and dtype == torch.float16:
        raise ValueError("float16 is not supported on CPU; use float32 or bfloat16")
    return dtype


def place(model: FindModel, device: str | torch.device = "auto", dtype: str | torch.dtype | None = None) -> FindModel:
    """Move ``model`` to the resolved device and dtype (in place) and return it."""
    device = resolve_device(device)
    model.to(device=device, dtype=resolve_dtype(dtype, device))
    return model


def from_config(config: FindConfig, *, base_dir: str | Path | None = None, device: str | torch.device = "auto",
                dtype: str | torch.dtype | None = None, seed: int | None = None) -> FindModel:
    """Load the encoders the config names (relative names from ``base_dir``) and initialise a
    fresh, untrained interface (from ``seed`` when given, without touching the global RNG)."""
    vision = load_vision_encoder(config.vision_model, base_dir)
    language = load_language_encoder(config.language_model, config.language_layer, base_dir)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        model = FindModel(config, vision, language)
    model.source_dir = Path(base_dir) if base_dir is not None else None
    return place(model, device, dtype)


def from_pretrained(path: str | Path, device: str | torch.device = "auto",
                    dtype: str | torch.dtype | None = None) -> FindModel:
    """The model saved in directory ``path``; a missing or mismatched file is an error naming it."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"model directory not found: {path}")
    config = FindConfig.load(path / checkpoint.CONFIG_NAME)
    state = checkpoint.load_weights(path / checkpoint.WEIGHTS_NAME)  # fail fast, before big encoders load
    vision = load_vision_encoder(config.vision_model, path)
    language = load_language_encoder(config.language_model, config.language_layer, path)
    model = FindModel(config, vision, language)
    expected = checkpoint.trainable_state(model.state_dict())
    checkpoint.check_state(expected, state, str(path / checkpoint.WEIGHTS_NAME))
    model.load_state_dict(state, strict=False)
    model.source_dir = path
    return place(model, device, dtype)


def save_pretrained(model: FindModel, path: str | Path, *, include_encoders: bool = False) -> Path:
    """Write config.json + model.safetensors. With ``include_encoders`` the frozen encoders are
    saved into ``vision/`` and ``language/`` and the config points there (self-contained);
    otherwise it names them as they were loaded (directories as absolute paths)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = FindConfig.from_dict(model.config.to_dict())
    if include_encoders:
        for sub, encoder in ((checkpoint.VISION_DIR, model.vision_encoder), (checkpoint.LANGUAGE_DIR, model.language_encoder)):
            target = path / sub
            if target.exists():
                shutil.rmtree(target)
            with quiet_transformers():
                encoder.model.save_pretrained(target)
                if hasattr(encoder, "tokenizer"):
                    encoder.tokenizer.save_pretrained(target)
        config.vision_model, config.language_model = checkpoint.VISION_DIR, checkpoint.LANGUAGE_DIR
    else:
        config.vision_model = _portable_reference(config.vision_model, model.source_dir, path)
        config.language_model = _portable_reference(config.language_model, model.source_dir, path)
    checkpoint.save_weights(checkpoint.trainable_state(model.state_dict()), path / checkpoint.WEIGHTS_NAME)
    config.save(path / checkpoint.CONFIG_NAME)
    return path


def _portable_reference(name: str, source_dir: Path | None, target: Path) -> str:
    """How the saved config should name an encoder: packaged and hub names as they are, a
    directory inside the target relative to it (the model dir can move), others absolute."""
    if name in PACKAGED_MODELS:
        return name
    source = Path(resolve_model_source(name, source_dir))
    if not source.is_dir():
        return name
    source = source.resolve()
    return str(source.relative_to(target.resolve())) if source.is_relative_to(target.resolve()) else str(source)
