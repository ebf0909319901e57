"""Vision pre-training: per-pixel targets, and a short run that leaves a loadable backbone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from training.data.dataset import load_split
from training.data.sources import discover
from training.pretrain_vision import IGNORE, instance_attributes, labels_for, main


def test_shape_target_lies_on_thing_pixels_only(synthetic_data: Path) -> None:
    data = load_split(discover(synthetic_data, "train"))
    attributes = instance_attributes(data.source.instances_json)
    things = {c for c, t in zip(data.categories.ids, data.categories.isthing) if t}
    checked = 0
    for sample in data.samples:
        ids = data.panoptic_ids(sample)
        labels = labels_for(ids, sample, data.categories, attributes)
        for seg in sample.segments:
            shape = labels["shape"][ids == seg.id]
            if seg.category_id in things:
                expected = sorted(things).index(seg.category_id)
                assert (shape == expected).all()
                checked += 1
            else:
                assert (shape == IGNORE).all()
    assert checked > 0


def test_a_short_run_writes_a_focalnet_that_find_loads(synthetic_data: Path, tmp_path: Path) -> None:
    from transformers import FocalNetModel

    out = tmp_path / "vision"
    assert main(["--data", str(synthetic_data), "--split", "train", "--val-split", "val", "--out", str(out),
                 "--embed-dim", "8", "--depths", "1,1,1,1", "--input-size", "96", "--steps", "2",
                 "--batch-size", "2", "--threads", "1"]) == 0
    report = json.loads((out / "pretraining.json").read_text())
    assert set(report["val_pixel_accuracy"]) >= {"category", "shape", "color"}
    assert all(0.0 <= v <= 1.0 for v in report["val_pixel_accuracy"].values())
    model = FocalNetModel.from_pretrained(out)
    assert model.config.embed_dim == 8 and not np.isnan(sum(float(p.detach().sum()) for p in model.parameters()))
