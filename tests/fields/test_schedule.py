"""The float learning-rate schedule: nerfstudio's, and its state loads with weights_only."""

from __future__ import annotations

import io
import math

import torch


def test_schedule_matches_nerfstudio_in_floats_and_saves_weights_only() -> None:
    from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig

    from find_ros.fields.schedule import FloatExponentialDecaySchedulerConfig

    def make(config):
        param = torch.nn.Parameter(torch.zeros(2))
        optimizer = torch.optim.Adam([param], lr=1e-2)
        return optimizer, config.setup().get_scheduler(optimizer, 1e-2)

    kwargs = dict(lr_final=1e-4, max_steps=100, warmup_steps=10, lr_pre_warmup=1e-5)
    ours, theirs = make(FloatExponentialDecaySchedulerConfig(**kwargs)), make(ExponentialDecaySchedulerConfig(**kwargs))
    for _ in range(30):
        for optimizer, scheduler in (ours, theirs):
            optimizer.step()
            scheduler.step()
        assert type(ours[0].param_groups[0]["lr"]) is float
        assert math.isclose(ours[0].param_groups[0]["lr"], float(theirs[0].param_groups[0]["lr"]), rel_tol=1e-9)
    buffer = io.BytesIO()
    torch.save({"optimizer": ours[0].state_dict(), "scheduler": ours[1].state_dict()}, buffer)
    buffer.seek(0)
    torch.load(buffer, weights_only=True)  # nothing to allowlist
