"""Task prototypes are data: validation, layouts, and a seventh task without touching model code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from find_ros.model import (
    GroundingResult,
    PromptSpec,
    QuerySpec,
    ReadoutSpec,
    TaskPrototype,
    get_prototype,
    list_prototypes,
    register_prototype,
    unregister_prototype,
)
from find_ros.model.prototypes import build_layout


def test_interleave_grounding_layout_matches_appendix_a3() -> None:
    # Two entities: tokens 0-1 belong to entity 0, token 2 to entity 1, token 3 to none.
    groups = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 0]], dtype=torch.bool)
    layout = build_layout(get_prototype("interleave_grounding"), {"interleave": groups}, num_object=3, num_global=1)
    assert layout.query_slices == {"entity": slice(0, 3), "interleave": slice(3, 5)}
    assert layout.query_pool_index.tolist() == [0, 1, 2, 3, 3]  # entity queries duplicate the global query
    assert layout.content_image.tolist() == [True, True, True, False, False]
    assert layout.mask_guided.tolist() == [True, True, True, False, False]
    assert layout.content_tokens[3].tolist() == [True, True, False, False]  # indexed: entity 0's own tokens
    assert layout.content_tokens[4].tolist() == [False, False, True, False]
    assert not layout.content_tokens[:3].any()  # proposals get the sentence in conditional attention
    c = layout.conditional  # order: tokens 0-3, entity queries 4-6, interleave queries 7-8
    assert c[:4, :4].tolist() == [[True, True, False, False], [True, True, False, False],
                                  [False, False, True, False], [False, False, False, False]]
    assert c[4:7, :4].all() and c[4:7, 4:7].all()  # q.entity <- p.interleave, q.entity <-> q.entity
    assert c[7:9, 7:9].tolist() == [[True, False], [False, True]]  # each entity query only itself
    assert not c[7:9, :7].any() and not c[:4, 4:].any()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(prompts=(PromptSpec("image", "video"),)), "source 'video'"),
        (dict(queries=(QuerySpec("object", "pool"),)), "init 'pool'"),
        (dict(queries=(QuerySpec("object", outputs=("depth",)),)), "outputs"),
        (dict(content=("q.object <- p.nothing",)), "unknown p.nothing"),
        (dict(content=("p.image <- q.object",)), "must be 'q.<query> <- p.<prompt>'"),
        (dict(conditional=("q.object <- p.image",)), "content attention only"),
        (dict(conditional=("q.object -> q.object",)), "is not 'x.a <- y.b'"),
        (dict(readout=ReadoutSpec("match", proposals="object", targets="ghost")), "targets 'ghost'"),
        (dict(queries=(QuerySpec("object", per_group_of="image"),)), "per_group_of must name a token prompt"),
        (dict(name="bad name"), "identifier"),
    ],
)
def test_invalid_prototypes_are_rejected_with_reasons(kwargs, message) -> None:
    base = dict(name="t", description="d", prompts=(PromptSpec("image", "image"),), queries=(QuerySpec("object"),),
                content=("q.object <- p.image",), conditional=())
    with pytest.raises(ValueError, match=message):
        TaskPrototype(**{**base, **kwargs})


def test_registry_refuses_duplicates_and_names_known_tasks() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_prototype(get_prototype("interleave_grounding"))
    with pytest.raises(ValueError, match="unknown task 'nope'.*interleave_grounding"):
        get_prototype("nope")


def test_a_seventh_task_is_declared_and_run_without_model_code(model) -> None:
    """Region captioning-style grounding: each phrase query attends its phrase AND the image, and
    proposals are matched to phrases — a combination none of the six declares."""
    seventh = TaskPrototype(
        name="phrase_region_grounding",
        description="phrases that look at the image themselves",
        prompts=(PromptSpec("image", "image"), PromptSpec("phrase", "text")),
        queries=(QuerySpec("region", "object", outputs=("semantic", "pixel")),
                 QuerySpec("phrase", "global", per_group_of="phrase")),
        content=("q.region <- p.image", "q.phrase <- p.phrase", "q.phrase <- p.image"),
        conditional=("q.region <-> q.region", "q.region <- q.phrase"),
        readout=ReadoutSpec("match", proposals="region", targets="phrase"),
    )
    register_prototype(seventh)
    try:
        assert "phrase_region_grounding" in {p.name for p in list_prototypes()}
        rgb = np.random.default_rng(2).integers(0, 256, (40, 40, 3), dtype=np.uint8)
        frame = model.encode_image(rgb)
        out = model.run("phrase_region_grounding", frame, phrase=["a mug", "a plant", "the floor"])
        assert out.state.layout.content_image.sum() == model.config.num_object_queries + 3
        assert out.predictions.semantic["phrase"].shape == (1, 3, model.config.hidden_dim)
        result = model.readout(out)[0]
        assert isinstance(result, GroundingResult) and [e.label for e in result.entities] == ["a mug", "a plant", "the floor"]
        assert all(e.mask.shape == (40, 40) for e in result.entities)
        with pytest.raises(ValueError, match="needs prompt\\(s\\) phrase"):
            model.run("phrase_region_grounding", frame)
        with pytest.raises(ValueError, match="has no prompt\\(s\\) caption"):
            model.run("phrase_region_grounding", frame, phrase=["x"], caption=["y"])
    finally:
        unregister_prototype("phrase_region_grounding")
    with pytest.raises(ValueError, match="unknown task"):
        model.run("phrase_region_grounding", frame, phrase=["x"])
