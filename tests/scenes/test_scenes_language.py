"""Language ground truth: referring expressions are unique in their image (checked by an evaluator
written here from the exported COCO fields alone), grounded captions follow FIND-Bench's schema and
markup, and interleave references point into other images."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scene_settings import DATASET_SPLITS, SIZE

from find_ros.scenes import vocabulary as V
from find_ros.scenes.annotate import min_area
from find_ros.scenes.captions import StuffFacts, grounded_caption, parse_markup, short_captions
from find_ros.scenes.referring import ObjectFacts, referring_expressions, select

# ----------------------------------------------------------------------- independent evaluator


def _cx(ann: dict) -> float:
    return ann["bbox"][0] + ann["bbox"][2] / 2


def _left(a: dict, b: dict) -> bool:
    return _cx(a) < b["bbox"][0] and _cx(b) > a["bbox"][0] + a["bbox"][2]


def _front(a: dict, b: dict) -> bool:
    return a["center_camera"][2] < b["center_camera"][2] - max(a["radius"], b["radius"])


def _has(ann: dict, description: dict) -> bool:
    return all(ann["attributes"][k] == v for k, v in description.items())


def _selected(expression: dict, anns: list[dict], width: int) -> set[int]:
    """Which annotations an expression describes, from exported fields only."""
    cands = [a for a in anns if _has(a, expression["target"])]
    relation = expression["relation"]
    if relation is None:
        return {a["id"] for a in cands}
    if relation.startswith("on the "):
        return {a["id"] for a in cands if a["attributes"]["support"] == relation[7:]}
    if relation in ("leftmost", "rightmost", "nearest", "farthest"):
        key = {"leftmost": _cx, "rightmost": lambda a: -_cx(a), "nearest": lambda a: a["center_camera"][2],
               "farthest": lambda a: -a["center_camera"][2]}[relation]
        ranked = sorted(cands, key=key)
        margin = 0.1 if relation in ("nearest", "farthest") else 0.03 * width
        if len(ranked) > 1 and key(ranked[1]) - key(ranked[0]) < margin:
            return {ranked[0]["id"], ranked[1]["id"]}
        return {ranked[0]["id"]} if ranked else set()
    landmarks = [a for a in anns if _has(a, expression["landmark"])]
    assert [a["id"] for a in landmarks] == [expression["landmark_ann_id"]], "landmark must be unique"
    lm = landmarks[0]
    test = {"left of": lambda a: _left(a, lm), "right of": lambda a: _left(lm, a),
            "in front of": lambda a: _front(a, lm), "behind": lambda a: _front(lm, a)}[relation]
    return {a["id"] for a in cands if a["id"] != lm["id"] and test(a)}


def _words_said(text: str, description: dict) -> bool:
    for key, value in description.items():
        if key == "shape":
            if not any(re.search(rf"\b{noun}\b", text) for noun in V.SHAPE_NOUNS[value]):
                return False
        elif key == "texture":
            if value != "plain" and V.TEXTURE_PHRASES[value] not in text:
                return False
        elif not re.search(rf"\b{value}\b", text):
            return False
    return True


def _load(dataset_dir: Path, name: str) -> dict:
    return json.loads((dataset_dir / "annotations" / name).read_text())


# ------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("split", DATASET_SPLITS)
def test_referring_expressions_are_unique_in_their_image(dataset_dir: Path, split: str) -> None:
    instances = _load(dataset_dir, f"instances_{split}.json")
    refs = _load(dataset_dir, f"refs_{split}.json")["refs"]
    by_image: dict[int, list[dict]] = {}
    for ann in instances["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    anns_by_id = {a["id"]: a for a in instances["annotations"]}
    relations = set()
    for ref in refs:
        assert ref["split"] == split and ref["ann_id"] == ref["ref_id"]
        ann = anns_by_id[ref["ann_id"]]
        assert ann["image_id"] == ref["image_id"] and ann["category_id"] == ref["category_id"]
        assert ref["sent_ids"] == [s["sent_id"] for s in ref["sentences"]] and ref["sentences"]
        for sentence in ref["sentences"]:
            expression = sentence["expression"]
            assert _selected(expression, by_image[ref["image_id"]], SIZE[0]) == {ref["ann_id"]}, sentence["raw"]
            assert _words_said(sentence["raw"], expression["target"]), sentence["raw"]
            if "landmark" in expression:
                assert _words_said(sentence["raw"], expression["landmark"]) and expression["relation"] in sentence["raw"]
            assert sentence["sent"] == sentence["raw"].lower()
            assert sentence["tokens"] == re.findall(r"[a-z0-9]+", sentence["sent"])
            relations.add(expression["relation"])
    # Most clearly visible things get expressions, and spatial relations are used.
    threshold = min_area(*SIZE)
    eligible = [a for a in instances["annotations"] if a["area"] >= threshold]
    assert len(refs) >= 0.8 * len(eligible)
    assert relations & {"left of", "right of", "in front of", "behind"}


@pytest.mark.parametrize("name", ["entity_{}.json", "entity_{}_long.json"])
@pytest.mark.parametrize("split", DATASET_SPLITS)
def test_findbench_entities_follow_the_released_schema(dataset_dir: Path, split: str, name: str) -> None:
    entity = _load(dataset_dir, name.format(split))
    panoptic = _load(dataset_dir, f"panoptic_{split}.json")
    segments = {s["id"]: (a["image_id"], s) for a in panoptic["annotations"] for s in a["segments_info"]}
    threshold = min_area(*SIZE)
    assert {i["id"] for i in entity["images"]} == {a["image_id"] for a in panoptic["annotations"]}
    referenced = 0
    for ann in entity["annotations"]:
        assert set(ann) == {"id", "image_id", "sentence", "sentence_raw", "phrase"}
        assert re.sub(r"\[\d+\]<([^<>]*)>", r"\1", ann["sentence_raw"]) == ann["sentence"]
        for p in ann["phrase"]:
            assert set(p) - {"reference"} == {"annotation_id", "phrase", "phrase_raw", "start_idx", "end_idx", "_start_idx"}
            assert ann["sentence"][p["start_idx"] : p["end_idx"]] == p["phrase"]
            assert p["_start_idx"] == p["start_idx"] and p["end_idx"] - p["_start_idx"] == len(p["phrase"])
            assert p["phrase_raw"] == f"[{p['annotation_id']}]<{p['phrase']}>" and p["phrase_raw"] in ann["sentence_raw"]
            # FIND's mappers swap phrases for placeholders with str.replace: each must occur once.
            assert ann["sentence"].count(p["phrase"]) == 1
            image_id, segment = segments[p["annotation_id"]]
            assert image_id == ann["image_id"] and segment["area"] >= threshold
            if "reference" in p:
                ref = p["reference"]
                ref_image, ref_segment = segments[ref["annotation_id"]]
                assert ref_image == ref["image_id"] != ann["image_id"]
                assert ref_segment["category_id"] == segment["category_id"] and ref_segment["area"] >= threshold
                assert 0.0 < ref["prob"] <= 1.0
                referenced += 1
        ids = [p["annotation_id"] for p in ann["phrase"]]
        assert len(ids) == len(set(ids))
        if "long" in name:  # the paragraph mentions every clearly visible thing
            things = {s["id"] for i, s in segments.values()
                      if i == ann["image_id"] and s["category_id"] <= 5 and s["area"] >= threshold}
            assert things <= set(ids)
    assert referenced > 0


def test_interleave_reference_prob_is_attribute_similarity(dataset_dir: Path) -> None:
    instances = {a["id"]: a for a in _load(dataset_dir, "instances_train.json")["annotations"]}
    for ann in _load(dataset_dir, "entity_train_long.json")["annotations"]:
        for p in ann["phrase"]:
            if p["annotation_id"] in instances and "reference" in p:
                a, b = instances[p["annotation_id"]], instances[p["reference"]["annotation_id"]]
                same = sum(a["attributes"][k] == b["attributes"][k] for k in ("color", "size", "material", "texture"))
                assert p["reference"]["prob"] == pytest.approx((1 + same) / 5, abs=1e-4)


# ------------------------------------------------------------------ properties of the generators

_fact = st.builds(
    lambda i, shape, color, size, material, texture, support, x, w, z, r, area: ObjectFacts(
        i, shape, color, size, material, texture, support, (0.0, 0.0, z), r, (x, 10, w, 20), area, 1.0, area >= 30),
    st.just(0), st.sampled_from(V.SHAPES), st.sampled_from(list(V.COLORS)[:4]), st.sampled_from(V.SIZES),
    st.sampled_from(V.MATERIALS), st.sampled_from(V.TEXTURES), st.sampled_from(V.SUPPORTS),
    st.integers(0, 300), st.integers(4, 60), st.floats(0.5, 3.0), st.floats(0.03, 0.2), st.integers(1, 900),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_fact, min_size=1, max_size=8), st.integers(0, 2**32 - 1))
def test_generated_expressions_select_exactly_their_target(facts: list[ObjectFacts], seed: int) -> None:
    facts = [ObjectFacts(**{**f.__dict__, "id": k + 1}) for k, f in enumerate(facts)]
    expressions = referring_expressions(facts, 320, np.random.default_rng(seed))
    for target_id, found in expressions.items():
        assert next(f for f in facts if f.id == target_id).eligible
        for expression in found:
            assert select(expression, facts, 320) == {target_id}
    # An eligible object with a unique attribute combination always gets an expression.
    for f in facts:
        if f.eligible and all(g.id == f.id or g.attributes() != f.attributes() for g in facts):
            assert f.id in expressions


@settings(max_examples=60, deadline=None)
@given(st.lists(_fact, min_size=0, max_size=9), st.integers(0, 2**32 - 1), st.booleans())
def test_grounded_captions_link_every_phrase_once(facts: list[ObjectFacts], seed: int, long: bool) -> None:
    facts = [ObjectFacts(**{**f.__dict__, "id": k + 1}) for k, f in enumerate(facts)]
    stuff = [StuffFacts(50, "floor", "gray tiled", 900, True), StuffFacts(51, "wall", "beige", 900, True),
             StuffFacts(53, "table", "wooden", 900, True), StuffFacts(54, "cabinet", "wooden", 900, True)]
    rng = np.random.default_rng(seed)
    raw = grounded_caption(facts, stuff, lambda e: 700 + e, rng, long=long)
    sentence, phrases = parse_markup(raw)
    for p in phrases:
        assert sentence.count(p["phrase"]) == 1, (p["phrase"], sentence)
        assert sentence[p["start_idx"] : p["end_idx"]] == p["phrase"]
    ids = [p["annotation_id"] - 700 for p in phrases]
    assert len(ids) == len(set(ids))
    if long:
        assert {f.id for f in facts if f.eligible} <= set(ids)
    assert len(short_captions(facts, stuff, rng)) == 5


def test_markup_errors_are_reported() -> None:
    assert parse_markup("[12]<a red ball> left of [7]<the box>.")[0] == "a red ball left of the box."
    with pytest.raises(ValueError, match="malformed"):
        parse_markup("[12]<a red ball left of the box.")
