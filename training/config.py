"""The training config: one YAML file, validated into dataclasses before anything heavy starts.

Sections (see training/configs/*.yaml for complete, commented examples)::

    model:     init (a model directory to start from) or config (FindConfig fields)
    data:      root, train (a data source), val (optional)
    items:     per-image sampling (ItemConfig)
    tasks:     probability that each task runs in a step (the multi-task mixture)
    losses:    per-task weights, points per mask, deep supervision
    optim:     AdamW lr / weight decay / betas, gradient clipping
    schedule:  max_steps, warm-up, step decay milestones
    run:       batch size per process, seed, output dir, checkpoint/log cadence, device, AMP,
               threads, loader workers, encoder caches

Unknown keys are errors (a misspelt key must not silently fall back to a default).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from training.data.items import ItemConfig
from training.data.sources import DataSource
from training.losses import MaskLossConfig, SetLossWeights
from training.objective import MASK_TASKS, TASKS, LossConfig


class ConfigError(ValueError):
    """A training config that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-4
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 1.0  # max global gradient norm; 0 disables


@dataclass(frozen=True)
class ScheduleConfig:
    max_steps: int = 1000
    warmup_steps: int = 10
    warmup_factor: float = 0.001  # lr multiplier at step 0, rising linearly to 1 at warmup_steps
    milestones: tuple[float, ...] = (0.89, 0.96)  # fractions of max_steps (Mask2Former's 327k/368k, 355k/368k)
    gamma: float = 0.1


@dataclass(frozen=True)
class RunConfig:
    batch_size: int = 2  # images per process and step, with every task's targets
    retrieval_batch_size: int = 0  # images per process for the retrieval tasks (>= batch_size; 0: the same)
    seed: int = 0
    output_dir: str = "runs/find"
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 10
    device: str = "auto"
    amp: str = "auto"  # auto: fp16 autocast on CUDA (bf16 where supported), off on CPU; or off/fp16/bf16
    threads: int = 0  # torch intra-op threads; 0 leaves torch's default
    workers: int = 0  # DataLoader worker processes
    vision_cache_mb: float = 0.0  # memoise the frozen encoders (useful without augmentation)
    language_cache_mb: float = 0.0
    progress: bool = True


@dataclass(frozen=True)
class TrainConfig:
    path: Path
    model_init: str | None
    model_config: dict[str, Any] | None
    train: DataSource
    val: DataSource | None
    items: ItemConfig
    tasks: dict[str, float]
    losses: LossConfig
    optim: OptimConfig
    schedule: ScheduleConfig
    run: RunConfig
    raw: dict[str, Any] = field(default_factory=dict)


def _section(doc: dict, key: str, path: Path) -> dict:
    value = doc.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: '{key}' must be a mapping")
    return value


def _build(cls: type, values: dict, path: Path, where: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) in '{where}': {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    out = {}
    for name, value in values.items():
        default = known[name].default
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigError(f"{path}: '{where}.{name}' must be true or false, got {value!r}")
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ConfigError(f"{path}: '{where}.{name}' must be a number, got {value!r}")
        out[name] = value
    try:
        return cls(**out)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{path}: '{where}': {error}") from error


def _losses(values: dict, path: Path) -> LossConfig:
    values = dict(values)
    weights = {}
    for task in MASK_TASKS:
        w = values.pop(task, None)
        if not isinstance(w, dict):
            raise ConfigError(f"{path}: 'losses.{task}' must be a mapping of ce, bce, dice (and no_object)")
        weights[task] = _build(SetLossWeights, w, path, f"losses.{task}")
    points = _build(MaskLossConfig, {k: values.pop(k) for k in ("num_points", "oversample_ratio", "importance_ratio")
                                     if k in values}, path, "losses")
    rest = {k: values.pop(k) for k in ("retrieval", "interleave_retrieval", "deep_supervision") if k in values}
    if values:
        raise ConfigError(f"{path}: unknown key(s) in 'losses': {', '.join(sorted(values))}")
    return LossConfig(weights=weights, points=points, **rest)


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read and validate a training YAML. ``overrides``: dotted keys ("run.output_dir") → values."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"training config not found: {path}")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    for dotted, value in (overrides or {}).items():
        node = doc
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    unknown = sorted(set(doc) - {"model", "data", "items", "tasks", "losses", "optim", "schedule", "run"})
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s): {', '.join(unknown)}")

    model = _section(doc, "model", path)
    if bool(model.get("init")) == bool(model.get("config")):
        raise ConfigError(f"{path}: 'model' needs exactly one of 'init' (a model directory) or 'config' (FindConfig fields)")
    extra = sorted(set(model) - {"init", "config"})
    if extra:
        raise ConfigError(f"{path}: unknown key(s) in 'model': {', '.join(extra)}")
    base = path.parent
    init = model.get("init")
    if init is not None and not Path(init).is_absolute():
        init = str((base / init).resolve()) if (base / init).exists() else str(Path(init).resolve())

    data = _section(doc, "data", path)
    extra = sorted(set(data) - {"root", "train", "val"})
    if extra:
        raise ConfigError(f"{path}: unknown key(s) in 'data': {', '.join(extra)}")
    root = Path(data.get("root", "."))
    if "train" not in data:
        raise ConfigError(f"{path}: 'data.train' (the training data source) is required")
    try:
        train = DataSource.from_dict(dict(data["train"]), root, "train")
        val = DataSource.from_dict(dict(data["val"]), root, "val") if data.get("val") else None
    except ValueError as error:
        raise ConfigError(f"{path}: {error}") from error

    tasks = _section(doc, "tasks", path)
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise ConfigError(f"{path}: unknown task(s) in 'tasks': {', '.join(unknown)}; known: {', '.join(TASKS)}")
    for t, p in tasks.items():
        if not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ConfigError(f"{path}: 'tasks.{t}' must be a probability in [0, 1], got {p!r}")
    if not any(tasks.values()):
        raise ConfigError(f"{path}: 'tasks' enables no task")

    run = _build(RunConfig, _section(doc, "run", path), path, "run")
    schedule = _build(ScheduleConfig, _section(doc, "schedule", path), path, "schedule")
    if schedule.max_steps < 1 or run.batch_size < 1 or run.checkpoint_every < 1:
        raise ConfigError(f"{path}: schedule.max_steps, run.batch_size and run.checkpoint_every must be >= 1")
    if run.retrieval_batch_size and run.retrieval_batch_size < run.batch_size:
        raise ConfigError(f"{path}: run.retrieval_batch_size ({run.retrieval_batch_size}) must be 0 or >= run.batch_size")
    if run.amp not in ("auto", "off", "fp16", "bf16"):
        raise ConfigError(f"{path}: 'run.amp' must be auto, off, fp16 or bf16, got {run.amp!r}")
    return TrainConfig(
        path=path, model_init=init, model_config=model.get("config"), train=train, val=val,
        items=_build(ItemConfig, _section(doc, "items", path), path, "items"),
        tasks={t: float(tasks.get(t, 0.0)) for t in TASKS},
        losses=_losses(_section(doc, "losses", path), path),
        optim=_build(OptimConfig, _section(doc, "optim", path), path, "optim"),
        schedule=schedule, run=run, raw=doc,
    )
