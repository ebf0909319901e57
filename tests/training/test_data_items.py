"""Training items: visual entities given as crops, and single-entity instructions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from find_ros.instructions import parse_instruction
from training.data.dataset import load_split
from training.data.items import ItemConfig, TrainItems, item_rng
from training.data.sources import discover


def _items(data_dir: Path, **cfg: float) -> list:
    data = load_split(discover(data_dir, "train"))
    items = TrainItems(data, ItemConfig(**cfg), seed=0)
    return [items.build(i, item_rng(0, 0, i)) for i in range(len(data))]


def test_visual_entities_become_crops_around_their_segment(synthetic_data: Path) -> None:
    built = _items(synthetic_data, visual_prob=1.0, crop_prob=1.0, reference_prob=0.5)
    regions = [r for it in built if it.interleave for r in it.interleave.regions]
    assert regions, "no visual entity was drawn"
    for r in regions:
        assert r.crop is not None and r.rgb is None  # a crop needs no second image encoded
        ys, xs = np.nonzero(r.mask)
        # context is at least 1.0: the crop is no smaller than the segment's box (or the image)
        assert r.crop.shape[0] >= min(ys.max() - ys.min() + 1, r.mask.shape[0])
        assert r.crop.shape[1] >= min(xs.max() - xs.min() + 1, r.mask.shape[1])
    same = [r for it in built if it.interleave for r in it.interleave.regions if r.image_id == it.image_id]
    assert same, "no visual entity from the item's own image"


def test_no_crops_by_default(synthetic_data: Path) -> None:
    built = _items(synthetic_data, visual_prob=1.0)
    assert all(r.crop is None for it in built if it.interleave for r in it.interleave.regions)


def test_single_entity_instructions_name_one_thing_with_its_target(synthetic_data: Path) -> None:
    built = _items(synthetic_data, visual_prob=0.5, single_entity_prob=1.0)
    plans = [(it.interleave.plan, it.interleave.masks) for it in built if it.interleave]
    assert plans
    for plan, masks in plans:
        parsed = parse_instruction(plan.text, len(plan.visuals))
        scored = [m for m in masks if m is not None]
        assert len(scored) == 1 and scored[0].any()
        assert plan.text in {"<0>"} or (plan.text.startswith("[") and plan.text.endswith("]")), plan.text
        assert len(parsed.entities) == len(masks)


def test_unstored_encoder_looks_up_but_keeps_nothing_new() -> None:
    import torch
    from torch import nn

    from training.cache import CachedVisionEncoder, unstored

    class Maps(nn.Module):
        calls = 0

        def forward(self, pixels):  # noqa: ANN001, ANN202
            Maps.calls += 1
            return [pixels * 2]

    enc = CachedVisionEncoder(Maps(), 1 << 20)
    seen, fresh = torch.ones(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    enc(seen)
    with unstored(enc):
        assert torch.equal(enc(seen)[0], seen * 2)  # a hit: no new call
        enc(fresh)
    assert Maps.calls == 2 and len(enc.cache.items) == 1 and enc.store
    unstored_plain = unstored(nn.Identity())
    with unstored_plain:  # any other encoder: no effect
        pass


def _grounded_kinds(data_dir: Path, **cfg: object) -> list[tuple[int, bool, bytes]]:
    """Every grounded target of every item: (item, is it a thing, its mask's bytes)."""
    data = load_split(discover(data_dir, "train"))
    items = TrainItems(data, ItemConfig(max_grounded=1000, **cfg), seed=0)
    out = []
    for i in range(len(data)):
        item = items.build(i, item_rng(0, 0, i))
        for _, mask in item.grounded:
            owners = [k for k, m in enumerate(item.masks) if np.array_equal(m, mask)]
            assert len(owners) == 1, "a grounded target is not one panoptic segment"
            out.append((i, data.categories.isthing[item.labels[owners[0]]], mask.tobytes()))
    return out


def test_grounded_targets_without_stuff_are_the_things_alone(synthetic_data: Path) -> None:
    """ItemConfig.grounded_stuff=False: FIND-Bench phrases naming stuff ("the floor") are no longer
    grounding targets; every thing target stays."""
    with_stuff = _grounded_kinds(synthetic_data)
    assert any(not thing for _, thing, _ in with_stuff), "the fixture has no stuff phrase: the test would be vacuous"
    without = _grounded_kinds(synthetic_data, grounded_stuff=False)
    assert without and all(thing for _, thing, _ in without)
    assert {(i, m) for i, _, m in without} == {(i, m) for i, thing, m in with_stuff if thing}
