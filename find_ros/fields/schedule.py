"""nerfstudio's exponential-decay learning-rate schedule, returning Python floats.

nerfstudio's own computes the factor with numpy, so optimizer and scheduler states hold
``numpy.float64`` learning rates, and torch >= 2.6 (``weights_only=True`` by default) refuses to
load the checkpoint (``numpy.core.multiarray.scalar`` is not an allowed global). With plain floats
a find-field checkpoint holds only tensors and builtins: ns-viewer, ns-render and our own loader
read it under the weights-only default with nothing allowlisted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Type

from torch.optim import Optimizer, lr_scheduler

from nerfstudio.engine.schedulers import ExponentialDecayScheduler, ExponentialDecaySchedulerConfig


@dataclass
class FloatExponentialDecaySchedulerConfig(ExponentialDecaySchedulerConfig):
    _target: Type = field(default_factory=lambda: FloatExponentialDecayScheduler)


class FloatExponentialDecayScheduler(ExponentialDecayScheduler):
    """The same schedule as nerfstudio's (linear or cosine warm-up, then exponential decay from
    ``lr_init`` to ``lr_final`` over ``max_steps``), in float arithmetic."""

    def get_scheduler(self, optimizer: Optimizer, lr_init: float) -> lr_scheduler.LRScheduler:
        c = self.config
        lr_final = lr_init if c.lr_final is None else c.lr_final

        def factor(step: int) -> float:
            if step < c.warmup_steps:
                ramp = min(max(step / c.warmup_steps, 0.0), 1.0)
                if c.ramp == "cosine":
                    ramp = math.sin(0.5 * math.pi * ramp)
                return (c.lr_pre_warmup + (lr_init - c.lr_pre_warmup) * ramp) / lr_init
            t = min(max((step - c.warmup_steps) / (c.max_steps - c.warmup_steps), 0.0), 1.0)
            return math.exp(math.log(lr_init) * (1 - t) + math.log(lr_final) * t) / lr_init

        return lr_scheduler.LambdaLR(optimizer, lr_lambda=factor)
