"""The ``[id]<text>`` entity markup: parsing, validation and character offsets.

A marked-up caption (``sentence_raw``) links phrases to panoptic segments::

    [5721674]<A baseball player> crouches on [4345187]<the sandy ground>.

Removing the markup gives the plain ``sentence`` ("A baseball player crouches on the sandy ground.").

A caption is accepted only if all of these hold (each failure has its own reason string, which the
engine records when it rejects a language-model answer):

* every ``[id]`` is followed directly by ``<text>``; ids are decimal segment ids that exist in that
  image; an id appears at most once per caption;
* spans never nest or overlap: no ``[``, ``]``, ``<`` or ``>`` inside an entity's text, and none left
  anywhere once the markup is removed;
* entity text is non-empty and has no leading/trailing whitespace;
* the plain sentence reads naturally: non-empty, no leading/trailing whitespace, no doubled spaces,
  no space before ``,.;:!?``, and an entity is not glued to the neighbouring word (``a[3]<dog>``);
* at least one entity per caption (a caption without links is useless for grounding);
* each phrase's text occurs exactly once in the plain sentence: FIND's released mappers find a
  phrase by its text (``sentence.replace(phrase, "[INTERACTIVE]")`` when an entity turns visual), so
  "a man ... a man", or "a car" next to "a carrot", would corrupt their spans.

Offsets (see :class:`Phrase`) are computed here and nowhere else, so the writer and the reader
cannot disagree about them.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

_ID_TEXT = re.compile(r"\[(\d+)\]<([^<>\[\]]*)>")
_BRACKETS = "[]<>"
_OPENERS = "([{\"'\u201c\u2018"  # a phrase may follow these without a space
_CLOSERS = ".,;:!?)]}\"'\u201d\u2019"  # ... and be followed by these


class MarkupError(ValueError):
    """A caption that breaks one of the markup rules; ``reason`` is short and stable (for statistics)."""

    def __init__(self, reason: str, detail: str, segment_id: int | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.segment_id = segment_id  # the entity at fault, where there is one
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True)
class Phrase:
    """One linked entity of a caption.

    ``start``/``end``: Python string indices (code points, end exclusive) of the phrase in the plain
    ``sentence``: ``sentence[start:end] == text``. Written as FIND-Bench ``start_idx``/``end_idx``
    and ``_start_idx`` (see :mod:`training.data_engine.schema` for why ``_start_idx == start_idx``).
    ``raw_start``: where the markup ``[id]<text>`` starts in ``sentence_raw`` (not written; kept for
    error messages and tools).
    """

    segment_id: int
    text: str
    raw: str
    start: int
    end: int
    raw_start: int


@dataclass(frozen=True)
class Caption:
    """A validated caption: the marked-up and the plain sentence, and its phrases in reading order."""

    sentence_raw: str
    sentence: str
    phrases: tuple[Phrase, ...]


def _scan_structure(raw: str) -> None:
    """Reject any bracket that is not part of a well-formed ``[id]<text>`` token, with a precise reason."""
    i = 0
    n = len(raw)
    while i < n:
        ch = raw[i]
        if ch == "[":
            m = _ID_TEXT.match(raw, i)
            if m is None:
                head = re.match(r"\[(\d*)\]", raw[i:])
                if head is None:
                    raise MarkupError("malformed_id", f"'[' at {i} is not followed by a decimal id and ']'")
                if not head.group(1):
                    raise MarkupError("malformed_id", f"empty id at {i}")
                j = i + head.end()
                if j >= n or raw[j] != "<":
                    raise MarkupError("missing_text", f"id [{head.group(1)}] at {i} is not followed by '<text>'")
                close = raw.find(">", j + 1)
                inner = raw[j + 1 : close if close != -1 else n]
                if any(c in inner for c in "[<"):
                    raise MarkupError("nested_or_overlapping", f"an entity starts inside entity [{head.group(1)}]")
                if close == -1:
                    raise MarkupError("unclosed_entity", f"entity [{head.group(1)}] has no closing '>'")
                raise MarkupError("stray_bracket", f"']' inside entity [{head.group(1)}]")
            i = m.end()
        elif ch in "]<>":
            raise MarkupError("stray_bracket", f"'{ch}' at {i} outside any [id]<text> entity")
        else:
            i += 1


def _check_reads_naturally(sentence: str) -> None:
    if not sentence.strip():
        raise MarkupError("empty_sentence", "no text once the markup is removed")
    if sentence != sentence.strip():
        raise MarkupError("untidy_whitespace", "leading or trailing whitespace")
    if "  " in sentence or any(c in sentence for c in "\t\n\r"):
        raise MarkupError("untidy_whitespace", "doubled spaces or line breaks once the markup is removed")
    m = re.search(r" [,.;:!?]", sentence)
    if m:
        raise MarkupError("untidy_whitespace", f"space before '{sentence[m.start() + 1]}'")
    if any(c in sentence for c in _BRACKETS):
        raise MarkupError("stray_bracket", "brackets left once the markup is removed")


def _check_entity(raw: str, m: re.Match, sid: int, text: str, seen: set[int]) -> None:
    if sid in seen:
        raise MarkupError("duplicate_id", f"[{sid}] is linked twice in one caption")
    seen.add(sid)
    if not text.strip():
        raise MarkupError("empty_entity", f"entity [{sid}] has no text")
    if text != text.strip():
        raise MarkupError("untidy_whitespace", f"entity [{sid}] text has leading or trailing whitespace")
    before = raw[m.start() - 1] if m.start() > 0 else ""
    after = raw[m.end()] if m.end() < len(raw) else ""
    if before and not (before.isspace() or before in _OPENERS):
        raise MarkupError("glued_entity", f"entity [{sid}] is glued to the preceding text")
    if after and not (after.isspace() or after in _CLOSERS):
        raise MarkupError("glued_entity", f"entity [{sid}] is glued to the following text")


def parse_caption(raw: str, valid_ids: Collection[int] | None = None, *, strict: bool = True) -> Caption:
    """Parse and validate one marked-up caption; raise :class:`MarkupError` on any rule broken.

    ``valid_ids``: the image's segment ids (``None`` skips that check, e.g. when reading a file whose
    panoptic annotations are not at hand).
    ``strict=False`` checks only the structure (well-formed, non-nested ``[id]<text>`` tokens, no stray
    brackets) and skips the reading rules (duplicates, whitespace, glued entities, at least one
    entity): for reading files written by other tools, such as the released FIND-Bench.
    """
    if not isinstance(raw, str):
        raise MarkupError("not_text", f"expected a string, got {type(raw).__name__}")
    _scan_structure(raw)
    phrases: list[Phrase] = []
    parts: list[str] = []
    plain_len = 0
    last = 0
    seen: set[int] = set()
    for m in _ID_TEXT.finditer(raw):
        sid = int(m.group(1))
        text = m.group(2)
        if valid_ids is not None and sid not in valid_ids:
            raise MarkupError("unknown_id", f"[{m.group(1)}] is not a segment of this image")
        if strict:
            _check_entity(raw, m, sid, text, seen)
        parts.append(raw[last : m.start()])
        plain_len += m.start() - last
        phrases.append(
            Phrase(
                segment_id=sid,
                text=text,
                raw=m.group(0),
                start=plain_len,
                end=plain_len + len(text),
                raw_start=m.start(),
            )
        )
        parts.append(text)
        plain_len += len(text)
        last = m.end()
    parts.append(raw[last:])
    sentence = "".join(parts)
    if strict:
        if not phrases:
            raise MarkupError("no_entities", "no [id]<text> entity in the caption")
        _check_reads_naturally(sentence)
        for p in phrases:
            if sentence.count(p.text) != 1:
                raise MarkupError(
                    "repeated_phrase",
                    f"phrase {p.text!r} of [{p.segment_id}] occurs {sentence.count(p.text)} times",
                    p.segment_id,
                )
    return Caption(sentence_raw=raw, sentence=sentence, phrases=tuple(phrases))


_LIST_MARKER = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*\u2022])\s+")


def parse_response(text: str, n_captions: int, valid_ids: Collection[int]) -> list[Caption]:
    """A language model's answer → exactly ``n_captions`` validated captions, or :class:`MarkupError`.

    One caption per non-empty line. A leading list marker ("1.", "2)", "-", "*") is removed, since
    models add them regardless of instructions; nothing else is repaired. The answer is accepted or
    rejected as a whole so a half-valid answer is never written.
    """
    if not isinstance(text, str) or not text.strip():
        raise MarkupError("empty_response", "the answer has no text")
    lines = [_LIST_MARKER.sub("", ln).strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    if len(lines) != n_captions:
        raise MarkupError("wrong_caption_count", f"expected {n_captions} caption line(s), got {len(lines)}")
    return [parse_caption(ln, valid_ids) for ln in lines]
