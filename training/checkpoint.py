"""Training checkpoints: atomic, pickle-free, exact to resume from.

A checkpoint is a directory ``step_00001234/`` with

* ``model.safetensors``      the trainable weights (the frozen encoders are re-loaded from their source);
* ``optimizer.safetensors``  every tensor of the optimizer state, keyed ``state.<param>.<name>``;
* ``rng.safetensors``        the torch CPU (and CUDA) generator states;
* ``state.json``             step, epoch, optimizer hyper-parameters and scalars, scheduler and AMP
                             scaler state, Python and NumPy generator states, the run's config.

It is written into a temporary sibling directory, every file fsync'ed, then renamed into place, and
only then does ``latest`` (a one-line file, itself replaced atomically) point at it: a run killed at
any moment leaves either the previous checkpoint or the new one, never half of one. Loading uses
safetensors and JSON only: nothing in a checkpoint can execute code.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

LATEST = "latest"
FORMAT = "find_ros.training-checkpoint/1"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_bytes(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _save_tensors(tensors: Mapping[str, torch.Tensor], path: Path) -> None:
    # safetensors refuses shared or non-contiguous storage; a clone per tensor is the portable form.
    save_file({k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}, str(path))
    with path.open("rb+") as f:
        os.fsync(f.fileno())


def write_atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    _write_bytes(tmp, text.encode())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


# ------------------------------------------------------------------------------------- optimizer


def optimizer_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors (for safetensors) and JSON-able rest."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        for name, value in st.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{pid}.{name}"] = value
            else:
                scalars.setdefault(str(pid), {})[name] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_tensors(tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = value
    for pid, st in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(st)
    return {"state": state, "param_groups": meta["param_groups"]}


# ------------------------------------------------------------------------------------------- RNG


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["torch_cuda"] = torch.cuda.get_rng_state()
    py = random.getstate()
    np_state = np.random.get_state()
    meta = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    return tensors, meta


def set_rng_state(tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    if "torch_cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["torch_cuda"])
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


# ------------------------------------------------------------------------------------ checkpoints


@dataclass
class Checkpoint:
    path: Path
    step: int
    epoch: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    scaler: dict[str, Any] | None
    rng_tensors: dict[str, torch.Tensor]
    rng_meta: dict[str, Any]
    extra: dict[str, Any]


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}"


def save_checkpoint(directory: str | Path, step: int, epoch: int, model_state: Mapping[str, torch.Tensor],
                    optimizer: torch.optim.Optimizer, scheduler: Any, scaler: Any | None,
                    extra: Mapping[str, Any] | None = None, keep: int = 2) -> Path:
    """Write checkpoint ``step`` under ``directory`` atomically and point ``latest`` at it; keep the
    newest ``keep`` checkpoints."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / checkpoint_name(step)
    tmp = directory / f".{final.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    _save_tensors(model_state, tmp / "model.safetensors")
    opt_tensors, opt_meta = optimizer_to_tensors(optimizer)
    _save_tensors(opt_tensors, tmp / "optimizer.safetensors")
    rng_tensors, rng_meta = rng_state()
    _save_tensors(rng_tensors, tmp / "rng.safetensors")
    sched = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
    state = {
        "format": FORMAT, "step": step, "epoch": epoch, "optimizer": opt_meta, "scheduler": sched,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "rng": rng_meta, "extra": dict(extra or {}),
    }
    _write_bytes(tmp / "state.json", json.dumps(state, indent=1).encode())
    _fsync_dir(tmp)
    if final.exists():  # a re-run reaching the same step replaces it
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(directory)
    write_atomic_text(directory / LATEST, final.name + "\n")
    old = sorted(p for p in directory.glob("step_*") if p.is_dir() and p != final)
    for p in old[: max(0, len(old) - (keep - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    return final


def latest_checkpoint(directory: str | Path) -> Path | None:
    directory = Path(directory)
    pointer = directory / LATEST
    if not pointer.is_file():
        return None
    path = directory / pointer.read_text().strip()
    if not (path / "state.json").is_file():
        raise ValueError(f"{pointer} points at {path}, which is not a complete checkpoint")
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path)
    try:
        state = json.loads((path / "state.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: unreadable checkpoint state ({error})") from error
    if state.get("format") != FORMAT:
        raise ValueError(f"{path}: checkpoint format {state.get('format')!r}, expected {FORMAT!r}")
    return Checkpoint(
        path=path, step=int(state["step"]), epoch=int(state["epoch"]),
        model=load_file(str(path / "model.safetensors")),
        optimizer=optimizer_from_tensors(load_file(str(path / "optimizer.safetensors")), state["optimizer"]),
        scheduler=state["scheduler"], scaler=state["scaler"],
        rng_tensors=load_file(str(path / "rng.safetensors")), rng_meta=state["rng"], extra=state["extra"],
    )
