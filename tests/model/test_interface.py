"""The attention masks are real.

For every task: an input a query may not reach through the task's masks (directly or through other
variables, over all layers) can change arbitrarily and that query's output stays bit-identical; an
input the query attends to directly changes it. Reachability is computed from the layout's masks,
and hand-written expectations pin the masks to the intent (e.g. captions never see the image).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from find_ros.model import ImageEmbeddings, SpatialPrompt, TokenSet
from find_ros.model.prototypes import Layout

IMAGE = "image"


def _reach(layout: Layout) -> dict[int, set]:
    """For each query row: the inputs (token indices, or IMAGE) its final state can depend on."""
    t, q = layout.num_tokens, layout.num_queries
    n = t + q
    depends = torch.eye(n, dtype=torch.bool)
    depends[t:, :t] |= layout.content_tokens.cpu()
    depends |= layout.conditional.cpu()
    closure = depends.clone()
    for _ in range(n):  # transitive closure (every layer applies every edge again)
        closure = closure | ((closure.float() @ closure.float()) > 0)
    image_rows = torch.zeros(n, dtype=torch.bool)
    image_rows[t:] = layout.content_image.cpu()
    sees_image = (closure.float() @ image_rows.float()) > 0
    return {i: {j for j in range(t) if closure[t + i, j]} | ({IMAGE} if sees_image[t + i] else set()) for i in range(q)}


@pytest.fixture(scope="module")
def scenarios(model):
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)
    crop = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    frame = model.encode_image(rgb)
    instruction = model.encode_instruction("[the red mug] left of <0> near [a chair]", [crop])
    with torch.no_grad():
        prompts = {
            "generic_segmentation": {"class": model.encode_classes(["cup", "table", "floor"])},
            "grounded_segmentation": {"text": model.encode_texts(["a red mug", "the table"])},
            "interactive_segmentation": {"spatial": model.encode_spatial(frame, [
                SpatialPrompt("point", np.array([10, 10])), SpatialPrompt("box", np.array([30, 5, 60, 30]), group=1)])},
            "image_text_retrieval": {"caption": model.encode_texts(["a red mug", "a dog", "two chairs"])},
            "interleave_grounding": {"interleave": instruction.token_set("entity")},
            "interleave_retrieval": {"interleave": TokenSet.cat(
                [instruction.token_set("item"), model.encode_instruction("a red mug").token_set("item")])},
        }
    return frame, prompts


def _final(model, task: str, frame: ImageEmbeddings, prompts: dict) -> torch.Tensor:
    with torch.no_grad():
        return model.run_interface(task, frame, **prompts).state.queries[0]


TASKS = ("generic_segmentation", "grounded_segmentation", "interactive_segmentation", "image_text_retrieval",
         "interleave_grounding", "interleave_retrieval")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(task=st.sampled_from(TASKS), target=st.integers(0, 10_000), scale=st.floats(0.5, 50.0), seed=st.integers(0, 2**16))
def test_unreachable_inputs_leave_queries_bit_identical(model, scenarios, task, target, scale, seed) -> None:
    frame, all_prompts = scenarios
    prompts = all_prompts[task]
    base_out = None
    with torch.no_grad():
        base_out = model.run_interface(task, frame, **prompts)
    layout = base_out.state.layout
    base = base_out.state.queries[0]
    reach = _reach(layout)
    gen = torch.Generator().manual_seed(seed)
    # Perturb either one token of the prompts or (target % 5 == 0) the whole image.
    if target % 5 == 0 or layout.num_tokens == 0:
        changed: object = IMAGE
        noisy = ImageEmbeddings(
            levels=tuple(level + scale * torch.randn(level.shape, generator=gen) for level in frame.levels),
            pixel=frame.pixel + scale * torch.randn(frame.pixel.shape, generator=gen),
            image_sizes=frame.image_sizes, resized_sizes=frame.resized_sizes,
        )
        perturbed = _final(model, task, noisy, prompts)
    else:
        changed = target % layout.num_tokens
        new_prompts = {}
        for name, token_set in prompts.items():
            s = layout.token_slices[name]
            tokens = token_set.tokens.clone()
            if s.start <= changed < s.stop:
                tokens[:, changed - s.start] += scale * torch.randn(tokens.shape[-1], generator=gen)
            new_prompts[name] = replace(token_set, tokens=tokens)
        perturbed = _final(model, task, frame, new_prompts)
    for i in range(layout.num_queries):
        same = torch.equal(base[i], perturbed[i])
        if changed not in reach[i]:
            assert same, f"{task}: query {i} changed although it cannot reach {changed}"
    # Any query that attends the changed input directly must change.
    if changed == IMAGE:
        direct = layout.content_image.nonzero().flatten().tolist()
    else:
        direct = layout.content_tokens[:, changed].nonzero().flatten().tolist()
    for i in direct:
        assert not torch.equal(base[i], perturbed[i]), f"{task}: query {i} attends {changed} but did not change"


def test_masks_encode_the_intended_independence(model, scenarios) -> None:
    """Hand-checked facts, so that reachability is not vacuous."""
    frame, prompts = scenarios
    with torch.no_grad():
        retrieval = model.run_interface("image_text_retrieval", frame, **prompts["image_text_retrieval"]).state.layout
        grounding = model.run_interface("interleave_grounding", frame, **prompts["interleave_grounding"]).state.layout
        generic = model.run_interface("generic_segmentation", frame, **prompts["generic_segmentation"]).state.layout
    reach = _reach(retrieval)
    image_q = retrieval.query_slices["image"].start
    captions = range(retrieval.query_slices["caption"].start, retrieval.query_slices["caption"].stop)
    assert reach[image_q] == {IMAGE}  # the image embedding sees only the image
    caption_tokens = [set(torch.nonzero(g).flatten().tolist()) for g in prompts["image_text_retrieval"]["caption"].groups]
    for k, i in enumerate(captions):
        assert reach[i] == caption_tokens[k]  # each caption only its own tokens

    reach = _reach(grounding)
    groups = prompts["interleave_grounding"]["interleave"].groups
    entity_queries = range(grounding.query_slices["interleave"].start, grounding.query_slices["interleave"].stop)
    for k, i in enumerate(entity_queries):
        assert reach[i] == set(torch.nonzero(groups[k]).flatten().tolist())  # an entity sees its own tokens only
    proposals = grounding.query_slices["entity"]
    assert all(reach[i] == {IMAGE, *range(grounding.num_tokens)} for i in range(proposals.start, proposals.stop))
    assert bool(grounding.mask_guided[proposals].all()) and not bool(grounding.mask_guided[entity_queries.start:].any())

    reach = _reach(generic)
    for i in range(generic.query_slices["class"].start, generic.query_slices["class"].stop):
        assert IMAGE not in reach[i]  # class embeddings do not depend on the picture


def test_mask_guided_attention_follows_the_previous_prediction(tiny_dir) -> None:
    """One interface layer: a proposal attends the first level only where its initial mask is on
    (sigmoid >= 0.5). Changing level-0 features where that mask is off leaves it bit-identical;
    changing them where it is on changes it. (A probe task without conditional edges, so that no
    other proposal carries the change over.)"""
    from find_ros.model import FindConfig, FindModel, QuerySpec, TaskPrototype, register_prototype, unregister_prototype
    from find_ros.model.prototypes import PromptSpec

    register_prototype(TaskPrototype(
        name="guided_probe", description="proposals looking at the image only",
        prompts=(PromptSpec("image", "image"),), queries=(QuerySpec("object", "object", outputs=("pixel",)),),
        content=("q.object <- p.image",), conditional=(),
    ), replace=True)

    config = FindConfig.from_dict({**FindConfig.load(tiny_dir / "config.json").to_dict(), "num_layers": 1, "input_size": 128})
    model = FindModel.from_config(config, base_dir=tiny_dir, device="cpu", seed=5)
    rgb = np.random.default_rng(4).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    frame = model.encode_image(rgb)
    with torch.no_grad():
        out = model.run_interface("guided_probe", frame)
        layout = out.state.layout
        initial = model.interface.query_feat(layout.query_pool_index)[None]
        w = frame.levels[0].shape[-1]
        pooled = torch.nn.functional.avg_pool2d(frame.pixel, frame.pixel.shape[-1] // w).flatten(2)
        on = (torch.einsum("bqc,bcp->bqp", model.heads.pixel_embed(initial), pooled)[0] >= 0)
    proposals = range(layout.num_queries)
    partial = [i for i in proposals if 0 < int(on[i].sum()) < on.shape[1]]
    assert partial, "no proposal with a partial initial mask; pick another seed"
    base = out.state.queries[0]
    for i in partial:
        for cells, should_change in ((~on[i]).nonzero().flatten(), False), (on[i].nonzero().flatten()[:1], True):
            level0 = frame.levels[0].clone().flatten(2)
            level0[0, :, cells] += 25.0
            noisy = ImageEmbeddings((level0.view_as(frame.levels[0]), *frame.levels[1:]), frame.pixel,
                                    frame.image_sizes, frame.resized_sizes)
            with torch.no_grad():
                after = model.run_interface("guided_probe", noisy).state.queries[0]
            assert torch.equal(after[i], base[i]) != should_change
    unregister_prototype("guided_probe")
