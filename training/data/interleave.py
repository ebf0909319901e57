"""FIND-Bench entity captions as interleaved instructions.

Each linked phrase of a caption either stays words (``[the red mug]``, a text entity) or becomes a
visual entity ``<k>`` whose picture is a segment — of the same image during training (the paper's
"visual entities from the same image"), or the phrase's ``reference`` segment in another image
(FIND-Bench evaluation). The instruction uses the grammar of :mod:`find_ros.instructions`, so
training and evaluation feed the model exactly what a robot user would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from find_ros.instructions import parse_instruction
from training.data_engine.schema import EntityCaption, Reference

_MARKUP_CHARS = re.compile(r"[\[\]<>]")


def _clean(text: str) -> str:
    # The instruction grammar reserves [] and <>; captions from other tools may contain them.
    return _MARKUP_CHARS.sub(" ", text)


@dataclass(frozen=True)
class VisualEntity:
    """Visual entity ``<k>``: segment ``segment_id`` of image ``image_id``."""

    image_id: int
    segment_id: int


@dataclass(frozen=True)
class InterleavePlan:
    text: str  # the instruction, e.g. "[A red sphere] left of <0> on [the table]."
    visuals: tuple[VisualEntity, ...]  # <0>, <1>, ... in order
    # Per entity of the parsed instruction (the model's order): the segment it must find in the
    # caption's image, or None for the whole-sentence entity a plain instruction gets.
    targets: tuple[int | None, ...]


def plan_instruction(caption: EntityCaption, visual: list[bool], use_reference: list[bool] | None = None) -> InterleavePlan:
    """``visual[i]``: phrase i becomes a picture; ``use_reference[i]``: its picture is the phrase's
    reference segment (another image) instead of its own segment. Phrases whose words are empty
    once cleaned stay plain text without a target."""
    if len(visual) != len(caption.phrases):
        raise ValueError(f"{len(visual)} visual flags for {len(caption.phrases)} phrases")
    use_reference = use_reference or [False] * len(visual)
    parts: list[str] = []
    visuals: list[VisualEntity] = []
    phrase_targets: list[int] = []
    cursor = 0
    sentence = caption.sentence
    for phrase, vis, ref in zip(caption.phrases, visual, use_reference):
        parts.append(_clean(sentence[cursor : phrase.start_idx]))
        words = " ".join(_clean(phrase.phrase).split())
        if vis:
            reference: Reference | None = phrase.reference
            if ref and reference is None:
                raise ValueError(f"phrase {phrase.phrase!r} of image {caption.image_id} has no reference")
            source = (VisualEntity(reference.image_id, reference.annotation_id) if ref
                      else VisualEntity(caption.image_id, phrase.annotation_id))
            if parts[-1] and not parts[-1][-1].isspace():
                parts.append(" ")
            parts.append(f"<{len(visuals)}>")
            visuals.append(source)
            phrase_targets.append(phrase.annotation_id)
        elif words:
            parts.append(f"[{words}]")
            phrase_targets.append(phrase.annotation_id)
        else:
            parts.append(_clean(phrase.phrase))
        cursor = phrase.end_idx
    parts.append(_clean(sentence[cursor:]))
    text = " ".join("".join(parts).split())
    parsed = parse_instruction(text, len(visuals))
    extra = len(parsed.entities) - len(phrase_targets)
    if extra not in (0, 1):  # the parser adds at most the whole-sentence entity
        raise AssertionError(f"instruction {text!r}: {len(parsed.entities)} entities for {len(phrase_targets)} phrases")
    return InterleavePlan(text, tuple(visuals), (None,) * extra + tuple(phrase_targets))


def visual_flags(count: int, probability: float, rng: np.random.Generator) -> list[bool]:
    """Each entity turns visual with ``probability`` (the paper's 0.5), independently."""
    return [bool(v) for v in rng.random(count) < probability]
