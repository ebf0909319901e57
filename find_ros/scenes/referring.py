"""Referring expressions that pick out exactly one object in a view, checked against the view.

An expression is kept in structured form and rendered to text:

    {"target": {"color": "red", "shape": "sphere"},          # attributes the target must have
     "relation": "left of", "landmark": {"shape": "box", "color": "blue"}, "landmark_id": 3}

``relation`` is None (attributes alone), a binary relation between target and landmark
(``left of``, ``right of``, ``in front of``, ``behind``), a support (``on the table``,
``on the floor``) or a superlative (``leftmost``, ``rightmost``, ``nearest``, ``farthest``).
``select`` evaluates an expression against the facts of a view; an expression is only emitted when
``select`` returns exactly its target. Distractors are *all* things with at least one visible
pixel, so uniqueness holds for whatever part of an object a viewer can see.

Spatial relations are defined on quantities the COCO export carries (mask bounding boxes, the
camera-frame centre and bounding radius of each object), so any reader can re-check them:

* a *left of* b: a's box centre is left of b's box left edge and b's centre right of a's right edge;
* a *in front of* b: a's centre is nearer the camera than b's by more than the larger radius;
* superlatives need a margin to the runner-up (3% of the image width, or 0.1 m in depth).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from find_ros.scenes import vocabulary as V

ATTRIBUTE_ORDER: tuple[str, ...] = ("size", "material", "color", "shape", "texture")
# Attribute subsets tried from shortest to longest; shape is always said.
DESCRIPTION_KEYS: tuple[tuple[str, ...], ...] = (
    ("shape",),
    ("color", "shape"),
    ("size", "shape"),
    ("size", "color", "shape"),
    ("material", "color", "shape"),
    ("color", "shape", "texture"),
    ("size", "material", "color", "shape"),
    ("size", "color", "shape", "texture"),
    ("material", "color", "shape", "texture"),
    ("size", "material", "color", "shape", "texture"),
)
BINARY_RELATIONS: tuple[str, ...] = ("left of", "right of", "in front of", "behind")
SUPPORT_RELATIONS: tuple[str, ...] = ("on the table", "on the floor")
SUPERLATIVES: tuple[str, ...] = ("leftmost", "rightmost", "nearest", "farthest")
SUPERLATIVE_PIXEL_MARGIN = 0.03  # of the image width
SUPERLATIVE_DEPTH_MARGIN = 0.1  # metres


@dataclass(frozen=True)
class ObjectFacts:
    """What language may say about one thing in one view."""

    id: int
    shape: str
    color: str
    size: str
    material: str
    texture: str
    support: str
    center_camera: tuple[float, float, float]
    radius: float
    bbox: tuple[int, int, int, int]
    area: int
    visible_fraction: float
    eligible: bool  # visible enough to be referred to or mentioned

    def attributes(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in ATTRIBUTE_ORDER}

    @property
    def box_center_x(self) -> float:
        return self.bbox[0] + self.bbox[2] / 2.0


def describe(facts: ObjectFacts, keys: tuple[str, ...]) -> dict[str, str]:
    return {k: getattr(facts, k) for k in keys}


def matches(description: dict[str, str], facts: ObjectFacts) -> bool:
    return all(getattr(facts, k) == v for k, v in description.items())


def left_of(a: ObjectFacts, b: ObjectFacts) -> bool:
    return a.box_center_x < b.bbox[0] and b.box_center_x > a.bbox[0] + a.bbox[2]


def in_front_of(a: ObjectFacts, b: ObjectFacts) -> bool:
    return a.center_camera[2] < b.center_camera[2] - max(a.radius, b.radius)


def holds(relation: str, a: ObjectFacts, b: ObjectFacts) -> bool:
    if relation == "left of":
        return left_of(a, b)
    if relation == "right of":
        return left_of(b, a)
    if relation == "in front of":
        return in_front_of(a, b)
    if relation == "behind":
        return in_front_of(b, a)
    raise ValueError(f"unknown relation {relation!r}")


def _superlative_key(relation: str, f: ObjectFacts) -> float:
    return {"leftmost": f.box_center_x, "rightmost": -f.box_center_x,
            "nearest": f.center_camera[2], "farthest": -f.center_camera[2]}[relation]


def select(expression: dict[str, Any], facts: list[ObjectFacts], image_width: int) -> set[int]:
    """Ids of the objects in ``facts`` that ``expression`` describes."""
    candidates = [f for f in facts if matches(expression["target"], f)]
    relation = expression.get("relation")
    if relation is None:
        return {f.id for f in candidates}
    if relation in SUPPORT_RELATIONS:
        return {f.id for f in candidates if f.support == relation.split()[-1]}
    if relation in SUPERLATIVES:
        if not candidates:
            return set()
        ranked = sorted(candidates, key=lambda f: _superlative_key(relation, f))
        if len(ranked) > 1:
            margin = SUPERLATIVE_DEPTH_MARGIN if relation in ("nearest", "farthest") else SUPERLATIVE_PIXEL_MARGIN * image_width
            if _superlative_key(relation, ranked[1]) - _superlative_key(relation, ranked[0]) < margin:
                return {ranked[0].id, ranked[1].id}  # too close to call: ambiguous
        return {ranked[0].id}
    landmarks = [f for f in facts if matches(expression["landmark"], f)]
    if len(landmarks) != 1:
        return {f.id for f in candidates}  # the landmark itself is ambiguous: so is the expression
    landmark = landmarks[0]
    return {f.id for f in candidates if f.id != landmark.id and holds(relation, f, landmark)}


# ----------------------------------------------------------------------------------- text


def noun_phrase(description: dict[str, str], rng: np.random.Generator | None = None, article: str = "the") -> str:
    """"the small glossy red ball with stripes". ``rng`` picks synonyms; None uses canonical nouns."""
    words = []
    for key in ("size", "material", "color"):
        if key in description:
            words.append(description[key])
    nouns = V.SHAPE_NOUNS[description["shape"]] if "shape" in description else ("object",)
    words.append(nouns[int(rng.integers(len(nouns)))] if rng is not None else nouns[0])
    tail = V.TEXTURE_PHRASES.get(description.get("texture", "plain"), "")
    text = " ".join(words) + (f" {tail}" if tail else "")
    if article in ("a", "an"):
        article = "an" if text[0] in "aeiou" else "a"
    return f"{article} {text}" if article else text


def expression_text(expression: dict[str, Any], rng: np.random.Generator | None = None) -> str:
    relation = expression.get("relation")
    target = expression["target"]
    if relation in SUPERLATIVES:
        if relation in ("leftmost", "rightmost"):
            return "the " + relation + " " + noun_phrase(target, rng, article="")
        return noun_phrase(target, rng) + (" nearest to the camera" if relation == "nearest" else " farthest from the camera")
    text = noun_phrase(target, rng)
    if relation is None:
        return text
    if relation in SUPPORT_RELATIONS:
        return f"{text} {relation}"
    return f"{text} {relation} {noun_phrase(expression['landmark'], rng)}"


# ------------------------------------------------------------------------------ generation


def unique_descriptions(target: ObjectFacts, facts: list[ObjectFacts]) -> list[dict[str, str]]:
    """Attribute-only descriptions, shortest first, that match the target and nothing else."""
    found = []
    for keys in DESCRIPTION_KEYS:
        description = describe(target, keys)
        if all(f.id == target.id or not matches(description, f) for f in facts):
            found.append(description)
    return found


def _shortest_with(
    target: ObjectFacts,
    facts: list[ObjectFacts],
    relation: str,
    image_width: int,
    landmark: ObjectFacts | None = None,
    landmark_description: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    """The shortest attribute description that, with ``relation`` (and landmark), is unique."""
    for keys in DESCRIPTION_KEYS:
        expression: dict[str, Any] = {"target": describe(target, keys), "relation": relation}
        if landmark is not None:
            expression["landmark"] = landmark_description
            expression["landmark_id"] = landmark.id
        if select(expression, facts, image_width) == {target.id}:
            return expression
    return None


def referring_expressions(
    facts: list[ObjectFacts], image_width: int, rng: np.random.Generator, per_object: int = 3
) -> dict[int, list[dict[str, Any]]]:
    """Up to ``per_object`` unique expressions for every eligible object, each with its ``text``.

    The first is the shortest attribute-only description if one exists; then one with a spatial
    relation (chosen at random among those that hold and are unique), then a superlative or
    support phrase. Objects that nothing tells apart (exact twins side by side) get none.
    """
    results: dict[int, list[dict[str, Any]]] = {}
    landmark_names = {f.id: unique_descriptions(f, facts) for f in facts if f.eligible}
    for target in facts:
        if not target.eligible:
            continue
        chosen: list[dict[str, Any]] = []
        plain = unique_descriptions(target, facts)
        if plain:
            chosen.append({"target": plain[0], "relation": None})

        relational = []
        for landmark in facts:
            if landmark.id == target.id or not landmark.eligible or not landmark_names.get(landmark.id):
                continue
            for relation in BINARY_RELATIONS:
                if holds(relation, target, landmark):
                    found = _shortest_with(target, facts, relation, image_width, landmark, landmark_names[landmark.id][0])
                    if found is not None:
                        relational.append(found)
        if relational:
            # Prefer relations that are needed (the target's own words are ambiguous), then any.
            needed = [e for e in relational if len(select({"target": e["target"]}, facts, image_width)) > 1]
            pool = needed or relational
            chosen.append(pool[int(rng.integers(len(pool)))])

        extra = []
        for relation in SUPERLATIVES + SUPPORT_RELATIONS:
            found = _shortest_with(target, facts, relation, image_width)
            if found is not None and len(select({"target": found["target"]}, facts, image_width)) > 1:
                extra.append(found)
        if extra:
            chosen.append(extra[int(rng.integers(len(extra)))])
        elif len(plain) > 1:
            chosen.append({"target": plain[int(rng.integers(1, len(plain)))], "relation": None})

        unique_texts: list[dict[str, Any]] = []
        for expression in chosen[:per_object]:
            expression = dict(expression)
            expression["text"] = expression_text(expression, rng)
            if expression["text"] not in {e["text"] for e in unique_texts}:
                unique_texts.append(expression)
        if unique_texts:
            results[target.id] = unique_texts
    return results


def scene_names(things: list[Any]) -> dict[int, list[str]]:
    """View-independent expressions for each thing of a scene (trajectory ground truth): shortest
    first, using attributes only, so each holds from every viewpoint. Things without a unique
    attribute description get an empty list."""
    pseudo = [
        ObjectFacts(t.id, t.shape, t.color, t.size, t.material, t.texture, t.support, (0.0, 0.0, 0.0), 0.0,
                    (0, 0, 0, 0), 0, 1.0, True)
        for t in things
    ]
    names: dict[int, list[str]] = {}
    for target in pseudo:
        found = unique_descriptions(target, pseudo)
        texts = [noun_phrase(d) for d in found[:2]]
        # A support phrase is view-independent too ("the red ball on the floor").
        if found:
            texts.append(noun_phrase(found[0]) + f" on the {target.support}")
        names[target.id] = texts
    return names
