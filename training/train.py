"""Train FIND: ``python -m training.train --config training/configs/<name>.yaml``.

Runs as one process (CPU or one GPU) or under ``torchrun --nproc_per_node N`` with
DistributedDataParallel (gloo on CPU, nccl on GPU). AdamW with linear warm-up and step decay,
gradient clipping, AMP autocast on GPU. Every ``run.checkpoint_every`` steps an atomic checkpoint
(:mod:`training.checkpoint`) is written; a run started again with the same output directory resumes
from the latest one and ends with the same weights, bit for bit, as a run never interrupted.
The finished model is written with ``FindModel.save_pretrained`` to ``<output_dir>/model``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, set_rng_state, write_atomic_text
from training.config import ConfigError, TrainConfig, load_config
from training.distributed import DistInfo, barrier, init_distributed, mean_over_ranks, shutdown


def build_model(cfg: TrainConfig, device: torch.device):  # noqa: ANN201 - FindModel (import is heavy)
    from find_ros.model import FindConfig, FindModel

    # Master weights stay fp32; AMP autocasts the forward on GPU.
    if cfg.model_init:
        return FindModel.from_pretrained(cfg.model_init, device=device, dtype=torch.float32)
    config = FindConfig.from_dict(dict(cfg.model_config))
    return FindModel.from_config(config, base_dir=cfg.path.parent, device=device, dtype=torch.float32, seed=cfg.run.seed)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: no weight decay on norms, biases, learned query/level embeddings and scalars
    (Mask2Former's practice), ``weight_decay`` elsewhere. Frozen encoders are left out."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim <= 1 or "norm" in name or name.endswith((".query_feat.weight", ".query_pos.weight", ".level_embed.weight")):
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up from ``warmup_factor`` to 1, then ×gamma at each milestone (fractions of max_steps)."""
    s = cfg.schedule
    if step < s.warmup_steps:
        alpha = step / max(1, s.warmup_steps)
        return s.warmup_factor * (1 - alpha) + alpha
    passed = sum(step >= int(m * s.max_steps) for m in s.milestones)
    return s.gamma ** passed


def tasks_for_step(cfg: TrainConfig, step: int) -> tuple[str, ...]:
    """The mixture: each task runs with its probability, drawn from (seed, step) so every rank
    (and a resumed run) agrees. At least one task always runs."""
    rng = np.random.default_rng([cfg.run.seed, step, 7])
    names = [t for t, p in cfg.tasks.items() if p > 0]
    draws = rng.random(len(names))
    chosen = tuple(t for t, d in zip(names, draws) if d < cfg.tasks[t])
    if not chosen:
        weights = np.array([cfg.tasks[t] for t in names])
        chosen = (names[int(rng.choice(len(names), p=weights / weights.sum()))],)
    return chosen


def step_seed(cfg: TrainConfig, step: int, rank: int) -> int:
    return int(np.random.SeedSequence([cfg.run.seed, step, rank]).generate_state(1)[0])


def amp_context(cfg: TrainConfig, device: torch.device):  # noqa: ANN201
    mode = cfg.run.amp
    if device.type != "cuda" or mode == "off":
        return nullcontext(), None
    if mode == "auto":
        mode = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    dtype = torch.bfloat16 if mode == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    return torch.autocast("cuda", dtype=dtype), scaler


class _Progress:
    """tqdm bar on rank 0 with loss and throughput; silent elsewhere."""

    def __init__(self, enabled: bool, start: int, total: int) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=start, desc="train", unit="step", dynamic_ncols=True, file=sys.stderr)

    def update(self, loss: float, samples_per_s: float, lr: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.3f}", samples_s=f"{samples_per_s:.2f}", lr=f"{lr:.2e}")
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class TrainResult:
    model: nn.Module  # the FindModel, trained (on every rank)
    export: Path  # <output_dir>/model, written by rank 0
    steps: int
    seconds: float
    samples_per_s: float


def train(cfg: TrainConfig, dist_info: DistInfo, resume: str = "auto") -> TrainResult:
    """Run (or resume) training to ``schedule.max_steps`` and export the model."""
    from training.cache import cache_stats, enable_encoder_cache
    from training.data.dataset import load_split
    from training.data.items import StepBatches, TrainItems, collate
    from training.objective import FindObjective

    if cfg.run.threads > 0:
        torch.set_num_threads(cfg.run.threads)
    out = Path(cfg.run.output_dir)
    ckpt_dir = out / "checkpoints"
    device = dist_info.device
    torch.manual_seed(cfg.run.seed)

    data = load_split(cfg.train)
    if dist_info.main and data.dropped:
        print(f"note: annotations of images outside the training split were dropped: {dict(data.dropped)}", file=sys.stderr)
    model = build_model(cfg, device)
    enable_encoder_cache(model, cfg.run.vision_cache_mb, cfg.run.language_cache_mb)
    model.train()
    objective = FindObjective(model, cfg.losses, data.categories.names)
    if dist_info.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        # Tasks differ per step, so some parameters get no gradient in a step.
        runner: nn.Module = DistributedDataParallel(objective, device_ids=[device.index] if device.type == "cuda" else None,
                                                    find_unused_parameters=True, broadcast_buffers=False)
    else:
        runner = objective
    optimizer = torch.optim.AdamW(parameter_groups(model, cfg.optim.weight_decay), lr=cfg.optim.lr,
                                  betas=tuple(cfg.optim.betas))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))
    autocast, scaler = amp_context(cfg, device)

    start = 0
    source = None
    if resume == "auto":
        source = latest_checkpoint(ckpt_dir)
    elif resume not in ("never", ""):
        source = Path(resume)
    if source is not None:
        ck = load_checkpoint(source)
        model.load_state_dict(ck.model, strict=False)
        missing = set(_trainable_state(model)) - set(ck.model)
        if missing:
            raise ValueError(f"{source}: checkpoint lacks trainable weights {sorted(missing)[:5]}")
        optimizer.load_state_dict(ck.optimizer)
        scheduler.load_state_dict({**scheduler.state_dict(), **ck.scheduler})
        if scaler is not None and ck.scaler:
            scaler.load_state_dict(ck.scaler)
        set_rng_state(ck.rng_tensors, ck.rng_meta)
        start = ck.step
        if dist_info.main:
            print(f"resuming from {source} (step {start})", file=sys.stderr)

    per_step = max(cfg.run.batch_size, cfg.run.retrieval_batch_size)
    sampler = StepBatches(len(data), per_step, dist_info.world, dist_info.rank, cfg.run.seed, start,
                          cfg.schedule.max_steps, full_items=cfg.run.batch_size)
    loader = torch.utils.data.DataLoader(TrainItems(data, cfg.items, cfg.run.seed), batch_sampler=sampler,
                                         collate_fn=collate, num_workers=cfg.run.workers,
                                         persistent_workers=cfg.run.workers > 0)
    writer = None
    if dist_info.main:
        out.mkdir(parents=True, exist_ok=True)
        write_atomic_text(out / "train_config.json", json.dumps(cfg.raw, indent=1, default=str))
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "tensorboard"), purge_step=start)
    progress = _Progress(dist_info.main and cfg.run.progress, start, cfg.schedule.max_steps)
    params = [p for p in model.parameters() if p.requires_grad]
    global_batch = cfg.run.batch_size * dist_info.world
    step = start
    window_t, window_n = time.perf_counter(), 0
    run_t = time.perf_counter()
    for items in loader:
        torch.manual_seed(step_seed(cfg, step, dist_info.rank))  # point sampling of the losses
        tasks = tasks_for_step(cfg, step)
        with autocast:
            loss, logs = runner(items, tasks, cfg.run.batch_size)
        if not math.isfinite(float(loss.detach())):
            raise FloatingPointError(f"step {step}: loss is {float(loss)} (tasks {tasks}); lower optim.lr or check the data")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip) if cfg.optim.grad_clip > 0 else None
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        scheduler.step()
        step += 1
        window_n += global_batch
        elapsed = time.perf_counter() - window_t
        rate = window_n / elapsed if elapsed > 0 else 0.0
        mean_loss = mean_over_ranks({"loss": logs["loss"]}, device)["loss"]
        progress.update(mean_loss, rate, scheduler.get_last_lr()[0])
        if writer is not None and (step % cfg.run.log_every == 0 or step == cfg.schedule.max_steps):
            writer.add_scalar("loss/total", mean_loss, step)
            for k, v in logs.items():
                if k != "loss":
                    writer.add_scalar(f"loss/{k}", v, step)
            writer.add_scalar("lr", scheduler.get_last_lr()[0], step)
            writer.add_scalar("samples_per_s", rate, step)
            if grad_norm is not None:
                writer.add_scalar("grad_norm", float(grad_norm), step)
            for k, v in cache_stats(model).items():
                writer.add_scalar(f"cache/{k}", v, step)
            window_t, window_n = time.perf_counter(), 0
        if step % cfg.run.checkpoint_every == 0 or step == cfg.schedule.max_steps:
            if dist_info.main:
                save_checkpoint(ckpt_dir, step, sampler.epoch_of(step), _trainable_state(model), optimizer, scheduler,
                                scaler, extra={"config": str(cfg.path), "world": dist_info.world}, keep=cfg.run.keep_checkpoints)
            barrier()
    progress.close()
    seconds = time.perf_counter() - run_t
    export = out / "model"
    if dist_info.main:
        model.config.trained = True
        model.save_pretrained(export)
        if writer is not None:
            writer.close()
    barrier()
    done = step - start
    return TrainResult(model, export, step, seconds, done * global_batch / seconds if seconds > 0 else 0.0)


def _trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    from find_ros.model.checkpoint import trainable_state

    return trainable_state(model.state_dict())


def _parse_value(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="training YAML (training/configs/*.yaml)")
    parser.add_argument("--resume", default="auto",
                        help="auto (latest checkpoint in the output directory, if any), never, or a checkpoint directory")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set run.output_dir=runs/x --set schedule.max_steps=50")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key] = _parse_value(value)
    try:
        cfg = load_config(args.config, overrides)
        dist_info = init_distributed(cfg.run.device)
        try:
            result = train(cfg, dist_info, args.resume)
        finally:
            shutdown()
    except (ConfigError, ValueError, FileNotFoundError) as error:
        print(f"training.train: error: {error}", file=sys.stderr)
        return 2
    if dist_info.main:
        print(json.dumps({"model": str(result.export), "steps": result.steps, "seconds": round(result.seconds, 1),
                          "samples_per_s": round(result.samples_per_s, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
