"""Deterministic captions composed from the annotations alone: no service, same output every run.

For caption ``k`` of an image the subject is the ``k``-th entity (things by area, then stuff by
area), placed in the image from its box; up to ``max_entities - 1`` other entities follow, things as
spatial relations to the subject (from box centres) and stuff as background::

    [3]<A red car> on the left of the image, to the left of [7]<a person>, with [1]<the sky> in the
    background.

Attributes come from segment descriptions when present: a short description ("red", "striped
wooden") is put before the category name; one that already names the category ("a small red car")
replaces it. Longer descriptions are left out (they would not read as a noun phrase).
"""

from __future__ import annotations

import re
from typing import Any

from .backend import CaptionResult
from .inputs import ImageItem, Segment
from .markup import Caption, MarkupError, parse_caption

_CATEGORY_NOISE = {"merged", "other", "stuff"}


def category_words(category: str) -> str:
    """COCO category names as words: 'wall-other-merged' → 'wall', 'traffic light' stays."""
    words = [w for w in re.split(r"[-_\s]+", category.strip().lower()) if w and w not in _CATEGORY_NOISE]
    return " ".join(words) or category.strip().lower()


def _clean(text: str) -> str:
    """A description made safe for the markup: no brackets, single spaces, no final punctuation."""
    text = re.sub(r"[\[\]<>]", " ", text)
    return " ".join(text.split()).strip(" .,;:!?").strip()


def _article(noun: str, definite: bool) -> str:
    if definite:
        return "the"
    return "an" if noun[:1] in "aeiou" else "a"


def noun_phrase(s: Segment) -> str:
    """The phrase naming segment ``s``, e.g. 'a red car' or 'the sky'."""
    name = category_words(s.category)
    noun = name
    for d in s.descriptions:
        d = _clean(d).lower()
        if not d:
            continue
        if re.search(rf"\b{re.escape(name)}\b", d):
            noun = re.sub(r"^(a|an|the)\s+", "", d)
            break
        if len(d.split()) <= 3:
            noun = f"{d} {name}"
            break
    return f"{_article(noun, definite=not s.isthing)} {noun}"


def _centre(s: Segment) -> tuple[float, float]:
    x, y, w, h = s.bbox
    return x + w / 2, y + h / 2


def location(s: Segment, width: int, height: int) -> str:
    """Where the segment sits in the image, in words."""
    cx, cy = _centre(s)
    horiz = "left" if cx < width / 3 else "right" if cx > 2 * width / 3 else ""
    vert = "top" if cy < height / 3 else "bottom" if cy > 2 * height / 3 else ""
    if horiz and vert:
        return f"in the {vert} {horiz} of the image"
    if horiz:
        return f"on the {horiz} of the image"
    if vert:
        return f"at the {vert} of the image"
    return "in the centre of the image"


def relation(subject: Segment, other: Segment, width: int, height: int) -> str:
    """How ``subject`` relates to ``other`` ('to the left of', 'above', ..., 'next to')."""
    sx, sy = _centre(subject)
    ox, oy = _centre(other)
    dx, dy = (ox - sx) / width, (oy - sy) / height
    if max(abs(dx), abs(dy)) < 0.1:
        return "next to"
    if abs(dx) >= abs(dy):
        return "to the left of" if dx > 0 else "to the right of"
    return "above" if dy > 0 else "below"


def _link(s: Segment, text: str) -> str:
    return f"[{s.id}]<{text}>"


def _join(items: list[str]) -> str:
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _ordered(item: ImageItem) -> list[Segment]:
    things = sorted((s for s in item.entity_segments if s.isthing), key=lambda s: (-s.area, s.id))
    stuff = sorted((s for s in item.entity_segments if not s.isthing), key=lambda s: (-s.area, s.id))
    return things + stuff


def compose(item: ImageItem, k: int, max_entities: int, exclude: frozenset[int] = frozenset()) -> str:
    """The ``k``-th marked-up caption of ``item``, leaving out the segments in ``exclude``."""
    ordered = _ordered(item)
    subject = ordered[k % len(ordered)]
    rest = [s for s in ordered if s.id != subject.id and s.id not in exclude][: max(0, max_entities - 1)]
    first = noun_phrase(subject)
    seen = {first}
    texts: dict[int, str] = {}
    for s in rest:
        text = noun_phrase(s)
        if text in seen and s.isthing:  # a second dog is "another dog", so each phrase stays unique
            text = "another " + text.split(" ", 1)[1]
        seen.add(text)
        texts[s.id] = text
    parts = [f"{_link(subject, first[0].upper() + first[1:])} {location(subject, item.width, item.height)}"]
    related = [s for s in rest if s.isthing]
    if related:
        parts.append(
            _join([f"{relation(subject, o, item.width, item.height)} {_link(o, texts[o.id])}" for o in related])
        )
    background = [s for s in rest if not s.isthing]
    if background:
        parts.append("with " + _join([_link(s, texts[s.id]) for s in background]) + " in the background")
    return ", ".join(parts) + "."


class OfflineBackend:
    """Captions from the annotations alone (see the module docstring)."""

    name = "offline"
    uses_llm = False

    def __init__(self, max_entities: int = 4) -> None:
        if max_entities < 1:
            raise ValueError("max_entities must be >= 1")
        self.max_entities = max_entities

    def fingerprint(self) -> dict[str, Any]:
        return {"backend": self.name, "max_entities": self.max_entities}

    def generate(self, item: ImageItem, n_captions: int) -> CaptionResult:
        segs = item.entity_segments
        if not segs:
            return CaptionResult(captions=[])
        ids = {s.id for s in segs}
        captions = [self._caption(item, k, ids) for k in range(min(n_captions, len(segs)))]
        return CaptionResult(captions=captions)

    def _caption(self, item: ImageItem, k: int, ids: set[int]) -> Caption:
        """Compose and validate with the same rules as model answers. A phrase whose text would occur
        twice ("a car" next to "a carrot") is dropped and the caption composed again; the subject
        alone always passes, so this ends within one try per entity."""
        subject = _ordered(item)[k % len(ids)].id
        exclude: set[int] = set()
        while True:
            raw = compose(item, k, self.max_entities, frozenset(exclude))
            try:
                return parse_caption(raw, ids)
            except MarkupError as e:
                if e.reason != "repeated_phrase":
                    raise
                if e.segment_id is not None and e.segment_id != subject:
                    exclude.add(e.segment_id)
                else:  # the subject's text recurs inside a later phrase: drop the last other entity
                    linked = parse_caption(raw, ids, strict=False).phrases
                    exclude.add([p.segment_id for p in linked if p.segment_id != subject][-1])
