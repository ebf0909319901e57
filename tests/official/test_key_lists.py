"""Every key of the full-size released state dicts (keys/*.tsv) is consumed with the shape our
full-size modules expect. Tensors and modules live on the meta device: nothing is allocated."""

from __future__ import annotations

import json
import math

import torch

from find_ros.model.convert import (
    NEUTRAL,
    OfficialSettings,
    check_source,
    find_config,
    infer_layout,
    key_map,
    source_shape,
    target_shapes,
)

from .conftest import fixture_root

# From find-official/README.md §1 (element counts of the authors' models built from their yamls).
ELEMENTS = {"find_focalt_llama.tsv": 103_288_448, "find_focall_llama.tsv": 279_850_376}
VARIANTS = {"find_focalt_llama.tsv": "focal_dw", "find_focall_llama.tsv": "focal"}


def meta_state(name: str) -> dict[str, torch.Tensor]:
    state = {}
    for line in (fixture_root() / "keys" / name).read_text().splitlines():
        key, shape, dtype = line.split("\t")
        state[key] = torch.empty(json.loads(shape), dtype=getattr(torch, dtype), device="meta")
    return state


def test_every_released_key_maps_onto_our_full_size_modules(key_list: str) -> None:
    state = meta_state(key_list)
    settings = OfficialSettings()  # the released models' values
    layout = infer_layout(state, settings, key_list)
    config = find_config(layout, settings, "huggyllama/llama-7b", {"file": key_list})
    targets = target_shapes(config, layout.backbone, layout.language_width)
    rules = key_map(layout, targets)
    check_source(state, rules, targets, key_list)  # raises, naming every missing/extra/misshaped key
    assert set(rules) == set(state)
    for key, rule in rules.items():
        if rule.kind != "drop":
            assert tuple(state[key].shape) == source_shape(rule, targets), key
    # Every element of the source lands in exactly one of ours (minus the two training buffers).
    dropped = sum(state[k].numel() for k, r in rules.items() if r.kind == "drop")
    ours = sum(math.prod(shape) for (_, key), shape in targets.items() if key not in NEUTRAL)
    assert sum(t.numel() for t in state.values()) == ELEMENTS.get(key_list, sum(t.numel() for t in state.values()))
    assert ours == sum(t.numel() for t in state.values()) - dropped
    if key_list in VARIANTS:
        assert layout.backbone.variant == VARIANTS[key_list]
        assert (layout.hidden_dim, layout.num_layers, layout.num_queries, layout.language_width) == (512, 9, 101, 4096)
        assert (config.neck, config.neck_layers, config.spatial_memories) == ("transformer_fpn", 6, 32)


def test_a_misfit_full_size_key_list_is_refused_by_name(key_list: str) -> None:
    state = meta_state(key_list)
    settings = OfficialSettings()
    layout = infer_layout(state, settings)
    config = find_config(layout, settings, "huggyllama/llama-7b", {})
    targets = target_shapes(config, layout.backbone, layout.language_width)
    rules = key_map(layout, targets)
    gone = "sem_seg_head.predictor.transformer_ffn_layers.3.linear1.bias"
    del state[gone]
    state["sem_seg_head.predictor.extra_head.weight"] = torch.empty(3, device="meta")
    state["backbone.norm2.weight"] = torch.empty(7, device="meta")
    try:
        check_source(state, rules, targets, key_list)
    except ValueError as error:
        text = str(error)
    else:
        raise AssertionError("a misfit state was accepted")
    assert gone in text and "sem_seg_head.predictor.extra_head.weight" in text and "backbone.norm2.weight [7]" in text
