"""Captions of a view: short plain captions (COCO captions) and grounded captions in FIND-Bench's
markup, where every mentioned entity is written ``[segment_id]<text>``.

Grounded captions obey what FIND's data mappers assume: each entity is mentioned once, and each
phrase's text occurs exactly once in the plain sentence (the mappers swap phrases for visual
placeholders with ``str.replace``). ``parse_markup`` turns ``sentence_raw`` into the plain
``sentence`` and the phrase records of the released schema, with ``sentence[start_idx:end_idx]``
equal to the phrase (``_start_idx`` holds the same start; FIND's mappers use ``end_idx - _start_idx``
as the phrase length).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from find_ros.scenes import vocabulary as V
from find_ros.scenes.referring import ObjectFacts, holds, noun_phrase

_MARKUP = re.compile(r"\[(\d+)\]<([^<>\[\]]+)>")
_NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
_VERBS = {"sphere": "sits", "box": "stands", "cylinder": "stands", "cone": "stands", "torus": "lies"}


@dataclass(frozen=True)
class StuffFacts:
    id: int
    category: str
    finish: str
    area: int
    eligible: bool

    def phrase(self, article: str = "the") -> str:
        """"the beige walls", "a wooden table"; ``article`` may be empty."""
        if self.category == "wall":
            text = f"{self.finish} walls"
        elif self.category == "ceiling":
            text = "ceiling"
        else:
            text = f"{self.finish} {self.category}"
        if article in ("a", "an"):
            article = "an" if text[0] in "aeiou" else "a"
        return f"{article} {text}".strip()


def parse_markup(sentence_raw: str) -> tuple[str, list[dict[str, Any]]]:
    """Plain sentence and FIND-Bench phrase records from ``[id]<text>`` markup."""
    sentence_parts: list[str] = []
    phrases: list[dict[str, Any]] = []
    cursor, length = 0, 0
    for match in _MARKUP.finditer(sentence_raw):
        before = sentence_raw[cursor : match.start()]
        if "[" in before or "<" in before or ">" in before or "]" in before:
            raise ValueError(f"malformed entity markup before position {match.start()} in {sentence_raw!r}")
        sentence_parts.append(before)
        length += len(before)
        text = match.group(2)
        phrases.append({
            "annotation_id": int(match.group(1)),
            "phrase": text,
            "phrase_raw": match.group(0),
            "start_idx": length,
            "end_idx": length + len(text),
            "_start_idx": length,
        })
        sentence_parts.append(text)
        length += len(text)
        cursor = match.end()
    tail = sentence_raw[cursor:]
    if any(c in tail for c in "[]<>"):
        raise ValueError(f"malformed entity markup after position {cursor} in {sentence_raw!r}")
    sentence_parts.append(tail)
    return "".join(sentence_parts), phrases


def _link(element_to_segment: Callable[[int], int], element: int, text: str) -> str:
    return f"[{element_to_segment(element)}]<{text}>"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _relation_phrase(a: ObjectFacts, b: ObjectFacts) -> str:
    for relation, words in (("left of", "to the left of"), ("right of", "to the right of"),
                            ("in front of", "in front of"), ("behind", "behind")):
        if holds(relation, a, b):
            return words
    return "next to"


_ORDINALS = ("second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth")


def _mention_names(things: list[ObjectFacts], rng: np.random.Generator) -> dict[int, str]:
    """A description per thing (no article), varied in length, such that no name is contained in
    another: then each phrase occurs exactly once in a caption, as FIND's mappers require."""
    names: dict[int, str] = {}
    for f in things:
        keys = ["color", "shape"]
        if rng.random() < 0.6:
            keys.insert(0, "size")
        if f.material != "matte" and rng.random() < 0.6:
            keys.insert(-2, "material")
        if f.texture != "plain":
            keys.append("texture")
        names[f.id] = noun_phrase({k: getattr(f, k) for k in keys}, rng, article="")

    def clashes() -> set[int]:
        # Compared with their articles, as they appear: "a box" is inside "a box with stripes",
        # while "a large box" is not inside "a second large box".
        said = {i: _article(n) for i, n in names.items()}
        return {i for i in said for j in said if i != j and said[i] in said[j]}

    if clashes():
        # Full descriptions; a plain surface says so, else "a pink block" hides in "a pink block with stripes".
        for f in things:
            words = [f.size, f.material, "plain" if f.texture == "plain" else None, f.color]
            description = " ".join(w for w in words if w) + " " + V.SHAPE_NOUNS[f.shape][0]
            tail = V.TEXTURE_PHRASES[f.texture]
            names[f.id] = description + (f" {tail}" if tail else "")
        seen: dict[str, int] = {}
        for f in things:  # exact twins: "a second large plain pink box"
            count = seen.get(names[f.id], 0)
            seen[names[f.id]] = count + 1
            if count:
                names[f.id] = f"{_ORDINALS[min(count, len(_ORDINALS)) - 1]} {names[f.id]}"
    if clashes():
        raise AssertionError(f"caption names still overlap: {sorted(names.values())}")
    return names


def _article(name: str) -> str:
    return ("an " if name[0] in "aeiou" else "a ") + name


def grounded_caption(
    things: list[ObjectFacts],
    stuff: list[StuffFacts],
    segment_of: Callable[[int], int],
    rng: np.random.Generator,
    long: bool,
) -> str:
    """``sentence_raw`` in FIND-Bench markup. Short: one sentence with up to three things and where
    they stand. Long: a paragraph mentioning every eligible thing and the visible stuff."""
    things = sorted((f for f in things if f.eligible), key=lambda f: f.box_center_x)
    stuff_by = {s.category: s for s in stuff if s.eligible}
    names = _mention_names(things, rng)
    mentioned: set[str] = set()

    def thing_link(f: ObjectFacts, capital: bool = False) -> str:
        text = _article(names[f.id])
        return _link(segment_of, f.id, _cap(text) if capital else text)

    def stuff_link(category: str, article: str = "the", capital: bool = False) -> str:
        mentioned.add(category)
        text = stuff_by[category].phrase(article)
        return _link(segment_of, stuff_by[category].id, _cap(text) if capital else text)

    if not long:
        if len(things) > 3:
            things = [things[i] for i in sorted(rng.choice(len(things), 3, replace=False).tolist())]
        if not things:
            return f"{stuff_link('table', 'a', capital=True)} in an empty room." if "table" in stuff_by else "An empty room."
        supports = {f.support for f in things}
        where = f" on {stuff_link(supports.pop())}" if len(supports) == 1 and things[0].support in stuff_by else " in the room"
        if len(things) == 1:
            return f"{thing_link(things[0], True)} {_VERBS[things[0].shape]}{where}."
        if len(things) == 2:
            a, b = things
            return f"{thing_link(a, True)} {_VERBS[a.shape]} {_relation_phrase(a, b)} {thing_link(b)}{where}."
        return f"{thing_link(things[0], True)}, {thing_link(things[1])} and {thing_link(things[2])} stand{where}."

    sentences: list[str] = []
    if "table" in stuff_by and "wall" in stuff_by:
        sentences.append(f"{stuff_link('table', 'a', True)} stands in a room with {stuff_link('wall', '')}.")
    elif "table" in stuff_by:
        sentences.append(f"The view shows {stuff_link('table', 'a')}.")
    for support in ("table", "floor"):
        group = [f for f in things if f.support == support]
        first = True
        for i in range(0, len(group), 2):
            a = group[i]
            pair = i + 1 < len(group)
            relation = f" {_relation_phrase(a, group[i + 1])} {thing_link(group[i + 1])}" if pair else ""
            if first and support in stuff_by and support not in mentioned:
                if pair:
                    sentences.append(f"On {stuff_link(support)}, {thing_link(a)} {_VERBS[a.shape]}{relation}.")
                else:
                    sentences.append(f"{thing_link(a, True)} {_VERBS[a.shape]} on {stuff_link(support)}.")
            else:
                lead = ("Further along" if support == "table" else "Nearby") if not first else (
                    "On the table" if support == "table" else "On the floor")
                if pair:
                    sentences.append(f"{lead}, {thing_link(a)} {_VERBS[a.shape]}{relation}.")
                else:
                    sentences.append(f"{lead}, {thing_link(a)} {_VERBS[a.shape]} on its own.")
            first = False
    if "cabinet" in stuff_by:
        sentences.append(f"{stuff_link('cabinet', 'a', True)} stands against the wall.")
    if "floor" in stuff_by and "floor" not in mentioned:
        sentences.append(f"{stuff_link('floor', 'the', True)} is visible below.")
    if "wall" in stuff_by and "wall" not in mentioned:
        sentences.append(f"The room has {stuff_link('wall', '')}.")
    return " ".join(sentences) if sentences else "An empty view."


def short_captions(
    things: list[ObjectFacts], stuff: list[StuffFacts], rng: np.random.Generator, count: int = 5
) -> list[str]:
    """``count`` plain captions of different styles (COCO captions has five per image)."""
    visible = sorted((f for f in things if f.eligible), key=lambda f: f.box_center_x)
    stuff_by = {s.category: s for s in stuff if s.eligible}
    table = stuff_by.get("table")
    wall = stuff_by.get("wall")
    floor = stuff_by.get("floor")
    names = _mention_names(visible, rng)
    n = len(visible)
    where = f"on a {table.finish} table" if table else "in a room"

    def listing(items: list[ObjectFacts]) -> str:
        parts = [_article(names[f.id]) for f in items]
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]

    options: list[str] = []
    if n:
        options.append(_cap(f"{listing(visible[:4])} {where}."))
        number = _NUMBERS[n] if n < len(_NUMBERS) else str(n)
        walls = f" in a room with {wall.finish} walls" if wall else ""
        options.append(_cap(f"{number} {'object' if n == 1 else 'objects'} {where}{walls}."))
        colours = sorted({f.color for f in visible}, key=lambda c: [f.color for f in visible].index(c))
        shapes = " and ".join(sorted({f.shape for f in visible})[:2])
        options.append(_cap(f"{', '.join(colours[:-1]) + ' and ' + colours[-1] if len(colours) > 1 else colours[0]} shapes, "
                            f"among them a {shapes.replace(' and ', ' and a ')}, {where}."))
        if n >= 2:
            a, b = visible[0], visible[1]
            options.append(_cap(f"{_article(names[a.id])} {_relation_phrase(a, b)} {_article(names[b.id])}."))
        biggest = max(visible, key=lambda f: f.area)
        floor_text = f" above a {floor.finish} floor" if floor else ""
        options.append(_cap(f"a view of {'a table' if table else 'a room'} with {_article(names[biggest.id])}{floor_text}."))
    else:
        options.append(_cap(f"an empty {table.finish} table in a room." if table else "an empty room."))
        if wall:
            options.append(f"A room with {wall.finish} walls and nothing on the table.")
        if floor:
            options.append(f"A {floor.finish} floor in an empty room.")
    order = rng.permutation(len(options))
    captions = [options[i] for i in order]
    while len(captions) < count:
        captions.append(captions[len(captions) % len(options)])
    return captions[:count]
