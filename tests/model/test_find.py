"""FindModel on a tiny model: every task prototype's output shapes, dtypes and read-outs, and no
autograd graph in eval mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from find_ros.model import (
    GroundingResult,
    RegionRef,
    RetrievalResult,
    SegmentationResult,
    SpatialPrompt,
    VisualClass,
    list_prototypes,
)

SIX = {"generic_segmentation", "grounded_segmentation", "interactive_segmentation", "image_text_retrieval",
       "interleave_grounding", "interleave_retrieval"}


def test_the_six_tasks_of_the_paper_are_registered() -> None:
    assert SIX <= {p.name for p in list_prototypes()}


def test_encode_image_shapes_sizes_and_batch(model, rgb) -> None:
    tall = rgb[:, :30]  # 48 x 30: a different aspect in the same batch
    emb = model.encode_image([rgb, tall])
    cfg = model.config
    assert emb.batch_size == 2 and emb.image_sizes == ((48, 80), (48, 30))
    assert emb.resized_sizes == ((38, 64), (64, 40))  # long side -> input_size (64)
    assert emb.input_size == (64, 64)
    assert [tuple(level.shape) for level in emb.levels] == [(2, cfg.hidden_dim, 64 // s, 64 // s) for s in (32, 16, 8)]
    assert tuple(emb.pixel.shape) == (2, cfg.mask_dim, 16, 16)
    assert emb.pixel.dtype == torch.float32 and not emb.pixel.requires_grad
    # A (B, H, W, 3) array is a batch too, and each image's features do not depend on its batch mates.
    alone = model.encode_image(rgb)
    stacked = model.encode_image(np.stack([rgb, rgb[::-1]]))
    assert torch.allclose(alone.pixel[0], stacked.pixel[0], atol=1e-5)


def test_generic_segmentation_shapes_and_readouts(model, rgb) -> None:
    emb = model.encode_image([rgb, rgb[:40]])
    out = model.run("generic_segmentation", emb, **{"class": ["cup", "table", "floor"]})
    q = model.config.num_object_queries
    assert out.predictions.semantic["object"].shape == (2, q, model.config.hidden_dim)
    assert out.predictions.semantic["class"].shape == (2, 3, model.config.hidden_dim)
    assert out.predictions.masks["object"].shape == (2, q, 16, 16)
    assert "class" not in out.predictions.masks  # class queries have no pixel output
    assert out.aux == []  # deep supervision only when training
    # Thresholds at zero keep every query: the merge itself must then produce consistent segments.
    results = model.readout(out, stuff=["floor"], object_threshold=0.0, overlap_threshold=0.0, top_k=5)
    assert len(results) == 2 and all(isinstance(r, SegmentationResult) for r in results)
    first, second = results
    assert first.panoptic.shape == (48, 80) and second.panoptic.shape == (40, 80)
    assert first.semantic.shape == (48, 80) and first.semantic.dtype == np.int32
    assert set(np.unique(first.semantic)) <= {0, 1, 2}
    assert len(first.instances) == 5 and all(i.mask.shape == (48, 80) for i in first.instances)
    assert [i.score for i in first.instances] == sorted((i.score for i in first.instances), reverse=True)
    ids = {s.id for s in first.segments}
    assert set(np.unique(first.panoptic)) - {0} == ids
    for s in first.segments:
        assert s.area == int((first.panoptic == s.id).sum()) and s.label in ("cup", "table", "floor")
        assert s.is_thing == (s.label != "floor")
    assert sum(s.label == "floor" for s in first.segments) <= 1  # stuff merged per class
    # Default thresholds keep nothing of a random model: no segments, an empty panoptic map.
    strict = model.segment(emb, ["cup", "table"], object_threshold=0.999)
    assert strict[0].segments == [] and not strict[0].panoptic.any()


def test_visual_context_classes_mix_with_names_in_order(model, rgb) -> None:
    emb = model.encode_image(rgb)
    region = RegionRef(emb, box=(10, 10, 30, 30))
    other = VisualClass("the other", (RegionRef(emb, box=(40, 0, 80, 20)), RegionRef(emb, box=(0, 30, 20, 48))))
    classes = model.encode_classes([VisualClass("that thing", (region,)), "cup", other, "table"])
    assert classes.labels == ("that thing", "cup", "the other", "table")
    assert classes.groups.sum(1)[[0, 2]].tolist() == [1, 1]  # one token per visual class
    assert classes.groups.sum(1)[[1, 3]].min() > 1  # a sentence of tokens per named class
    # The visual class's token is the mean of its regions' embeddings.
    expected = model.sampler.region_embeddings(other.regions)[0].mean(0)
    assert torch.allclose(classes.tokens[0, classes.groups[2]][0], expected, atol=1e-6)
    out = model.segment(emb, ["cup", VisualClass("that thing", (region,)), "table"], object_threshold=0.0)
    assert out[0].labels == ("cup", "that thing", "table")


def test_class_names_use_the_template_and_descriptions_need_not(model) -> None:
    named = model.encode_classes(["cup"])
    described = model.encode_classes(["a small open container for drinking"], use_template=False)
    template = model.encode_texts(["Describe the concept of cup."])
    assert torch.equal(named.tokens, template.tokens) and named.labels == ("cup",)
    assert torch.equal(described.tokens, model.encode_texts(["a small open container for drinking"]).tokens)
    result = model.segment(model.encode_image(np.zeros((32, 32, 3), np.uint8)), described, object_threshold=0.0)
    assert result[0].labels == ("a small open container for drinking",)


def test_grounded_segmentation_one_mask_per_phrase(model, rgb) -> None:
    emb = model.encode_image(rgb)
    out = model.run("grounded_segmentation", emb, text=["a red mug", "the table"])
    assert out.predictions.semantic["text"].shape == (1, 2, model.config.hidden_dim)
    result = model.readout(out)[0]
    assert isinstance(result, GroundingResult)
    assert [e.label for e in result.entities] == ["a red mug", "the table"]
    _check_entities(result, (48, 80), model.config.num_object_queries)


def test_interactive_segmentation_points_boxes_scribbles_masks(model, rgb) -> None:
    emb = model.encode_image(rgb)
    mask = np.zeros((48, 80), dtype=bool)
    mask[5:20, 40:70] = True
    prompts = [
        SpatialPrompt("point", np.array([10.0, 12.0])),
        SpatialPrompt("scribble", np.array([[30, 30], [50, 40], [60, 10]]), positive=False),
        SpatialPrompt("box", np.array([40, 5, 70, 20]), group=1),
        SpatialPrompt("mask", mask, group=2),
    ]
    tokens = model.encode_spatial(emb, prompts)
    levels = model.config.num_levels
    assert tokens.tokens.shape == (1, 4 * levels, model.config.hidden_dim)  # one token per prompt and level
    assert tokens.groups.sum(1).tolist() == [2 * levels, levels, levels]
    result = model.segment_interactive(emb, prompts)[0]
    assert [e.label for e in result.entities] == ["object 0", "object 1", "object 2"]
    _check_entities(result, (48, 80), model.config.num_object_queries)


def test_interleave_grounding_entities_crop_and_region(model, rgb, crop) -> None:
    frame = model.encode_image(rgb)
    earlier = model.encode_image(rgb[::-1].copy())
    instruction = model.encode_instruction("[the red mug] left of <0> near <1>", [crop, RegionRef(earlier, box=(0, 0, 40, 24))])
    assert instruction.labels == ("the red mug", "<0>", "<1>")
    assert instruction.entity_is_visual == (False, True, True)
    # The visual entities are one token each, in place of their placeholders.
    assert instruction.entity_groups[1:].sum(1).tolist() == [1, 1]
    out = model.run("interleave_grounding", frame, interleave=instruction)
    assert out.predictions.semantic["interleave"].shape == (1, 3, model.config.hidden_dim)
    assert out.predictions.pixel["entity"].shape == (1, model.config.num_object_queries, model.config.mask_dim)
    result = model.ground(frame, instruction)[0]
    assert [e.is_visual for e in result.entities] == [False, True, True]
    assert [e.visual_index for e in result.entities] == [None, 0, 1]  # which <k> each entity is
    _check_entities(result, (48, 80), model.config.num_object_queries)
    # The same instruction embeddings serve another frame (encode once, reuse).
    again = model.ground(earlier, instruction)[0]
    assert len(again.entities) == 3


def test_image_text_retrieval_similarity_matrix(model, rgb) -> None:
    emb = model.encode_image([rgb, rgb[::-1].copy(), rgb[:, ::-1].copy()])
    out = model.run("image_text_retrieval", emb, caption=["a red mug", "a dog on a sofa"])
    assert out.predictions.semantic["image"].shape == (3, 1, model.config.hidden_dim)
    assert out.predictions.masks == {}  # retrieval has semantic outputs only
    result = model.readout(out)
    assert isinstance(result, RetrievalResult) and result.similarity.shape == (3, 2)
    assert np.all(np.abs(result.similarity) <= 1 + 1e-5)
    # Embedding images and captions separately gives the same matrix (a gallery is indexed once).
    separate = model.compare(model.embed_images(emb, "image_text_retrieval"), model.embed_captions(["a red mug", "a dog on a sofa"]))
    assert np.allclose(separate.similarity, result.similarity, atol=1e-5)
    ranking = result.ranking(0)
    assert sorted(i for i, _ in ranking) == [0, 1, 2] and ranking[0][1] == result.similarity[:, 0].max()


def test_interleave_retrieval_similarity_matrix(model, rgb, crop) -> None:
    emb = model.encode_image([rgb, rgb[::-1].copy()])
    queries = [model.encode_instruction("a room with <0>", [crop]), model.encode_instruction("a red mug")]
    out = model.run("interleave_retrieval", emb, interleave=queries)
    assert out.predictions.semantic["interleave"].shape == (2, 2, model.config.hidden_dim)  # one query per instruction
    result = model.retrieve(emb, queries)
    assert result.similarity.shape == (2, 2)
    assert np.allclose(model.readout(out).similarity, result.similarity, atol=1e-5)
    assert torch.allclose(result.image_embeddings.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_pool_segments_gives_one_vector_per_mask(model, rgb) -> None:
    emb = model.encode_image(rgb)
    masks = np.zeros((2, 48, 80), dtype=bool)
    masks[0, :10, :10] = True
    masks[1, 20:, 40:] = True
    vectors = model.pool_segments(emb, masks)
    assert vectors.shape == (2, model.embed_dim) and not torch.allclose(vectors[0], vectors[1])


def test_bfloat16_on_cpu_runs_end_to_end(tiny_dir, rgb) -> None:
    from find_ros.model import FindModel

    model = FindModel.from_pretrained(tiny_dir, device="cpu", dtype="bfloat16")
    assert model.dtype == torch.bfloat16
    emb = model.encode_image(rgb)
    assert emb.pixel.dtype == torch.bfloat16
    result = model.ground(emb, "the red mug")[0]
    assert result.entities[0].mask.shape == (48, 80)
    with pytest.raises(ValueError, match="float16 is not supported on CPU"):
        FindModel.from_pretrained(tiny_dir, device="cpu", dtype="float16")


def _check_entities(result: GroundingResult, size: tuple[int, int], num_proposals: int) -> None:
    assert result.image_size == size
    for e in result.entities:
        assert e.mask.shape == size and e.mask.dtype == bool
        assert 0.0 < e.score <= 1.0 and 0 <= e.proposal < num_proposals
        assert e.mask_area == int(e.mask.sum())
        if e.mask_area:
            x0, y0, x1, y1 = e.box
            assert e.mask[y0:y1, x0:x1].sum() == e.mask_area and 0 <= x0 < x1 <= size[1] and 0 <= y0 < y1 <= size[0]
        else:
            assert e.box is None
        assert 0.0 <= e.confidence <= 1.0 and e.found == (e.confidence >= 0.5)  # an uncalibrated model: the fallback
        d = e.to_dict()
        assert set(d) == {"label", "found", "confidence", "score", "box", "mask_area"}


def test_eval_mode_records_no_graph(model, rgb) -> None:
    frame = model.encode_image(rgb)
    out = model.run("grounded_segmentation", frame, text=["a mug"])
    assert not frame.pixel.requires_grad and not out.predictions.masks["grounding"].requires_grad
