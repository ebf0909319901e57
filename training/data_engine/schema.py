"""The FIND-Bench JSON format as released (``entity_val2017.json``), its writer side and its reader.

::

    {"images": [{"id", "file_name", "height", "width", ...}],
     "annotations": [{"image_id", "sentence", "sentence_raw",
                      "phrase": [{"annotation_id", "phrase", "phrase_raw",
                                  "start_idx", "end_idx", "_start_idx",
                                  "reference": {"image_id", "annotation_id", "prob"}}]}]}

* ``annotation_id`` is the COCO panoptic segment id (an integer; a decimal string is accepted when
  reading, because some tools write ids as strings).
* ``phrase_raw`` is ``"[annotation_id]<phrase>"`` exactly as it appears in ``sentence_raw``.
* Offsets are Python string indices (code points), end exclusive, into the plain ``sentence``:
  ``sentence[start_idx:end_idx] == phrase``.
* ``_start_idx`` is also the phrase's start in ``sentence``, so we write ``_start_idx == start_idx``.
  Reading: the only released code that uses it, FIND's interleave mappers, turn an entity into the
  ``[INTERACTIVE]`` placeholder with ``offset += len('[INTERACTIVE]') - (end_idx - _start_idx)``;
  that is the change in sentence length only if ``end_idx - _start_idx == len(phrase)``, i.e. if
  ``_start_idx`` is the start in ``sentence``. (It is *not* an offset into ``sentence_raw``: with
  that reading every entity after the first would get a wrong span.) Positions in ``sentence_raw``
  are not stored; re-parse ``sentence_raw`` for them. ``find_ros.scenes`` writes the same.
* Each phrase's text occurs once in ``sentence`` (those mappers find phrases by text).
* ``reference`` (optional, interleave retrieval): the segment of another image that is the nearest
  neighbour of this phrase's segment by segment embedding; ``prob`` is defined in
  :mod:`training.data_engine.retrieval`.
* Phrases are listed in reading order.

:func:`load_find_bench` is the reader that training uses; it checks all of the above, including that
``sentence_raw`` re-parses to exactly the listed phrases, and raises :class:`InputFormatError` naming
the file, the record and the reason.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputFormatError
from .markup import Caption, MarkupError, parse_caption


@dataclass(frozen=True)
class Reference:
    """A visual stand-in for an entity: segment ``annotation_id`` of image ``image_id``."""

    image_id: int
    annotation_id: int
    prob: float


@dataclass(frozen=True)
class EntityPhrase:
    annotation_id: int
    phrase: str
    phrase_raw: str
    start_idx: int
    end_idx: int
    underscore_start_idx: int  # the JSON's "_start_idx" (== start_idx in files we write)
    reference: Reference | None = None


@dataclass(frozen=True)
class EntityCaption:
    image_id: int
    sentence: str
    sentence_raw: str
    phrases: tuple[EntityPhrase, ...]


@dataclass
class FindBench:
    """A loaded FIND-Bench file: image records by id, and captions in file order."""

    images: dict[int, dict[str, Any]]
    annotations: list[EntityCaption]

    def captions_of(self, image_id: int) -> list[EntityCaption]:
        return [a for a in self.annotations if a.image_id == image_id]


# --- writing ------------------------------------------------------------------------------------


def reference_dict(ref: Reference) -> dict[str, Any]:
    return {"image_id": ref.image_id, "annotation_id": ref.annotation_id, "prob": ref.prob}


def annotation_dict(
    ann_id: int, image_id: int, caption: Caption, references: dict[int, Reference] | None = None
) -> dict[str, Any]:
    """One FIND-Bench annotation from a validated caption; ``references`` maps segment id → reference.

    ``id`` (the caption's id, COCO style) is not in the released schema's list but is what COCO
    tools key annotations by; readers ignore it.
    """
    phrases = []
    for p in caption.phrases:
        d: dict[str, Any] = {
            "annotation_id": p.segment_id,
            "phrase": p.text,
            "phrase_raw": p.raw,
            "start_idx": p.start,
            "end_idx": p.end,
            "_start_idx": p.start,
        }
        if references is not None and p.segment_id in references:
            d["reference"] = reference_dict(references[p.segment_id])
        phrases.append(d)
    return {
        "id": ann_id,
        "image_id": image_id,
        "sentence": caption.sentence,
        "sentence_raw": caption.sentence_raw,
        "phrase": phrases,
    }


# --- reading ------------------------------------------------------------------------------------


def _fail(path: str, record: str, reason: str) -> None:
    raise InputFormatError(path, record, reason)


def _as_id(v: Any, path: str, record: str, key: str) -> int:
    if isinstance(v, bool):
        _fail(path, record, f"'{key}' must be an integer id, got {v!r}")
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.isdigit():
        return int(v)
    _fail(path, record, f"'{key}' must be an integer id, got {v!r}")
    raise AssertionError  # unreachable; keeps type checkers quiet


def _as_index(obj: dict, key: str, path: str, record: str) -> int:
    if key not in obj:
        _fail(path, record, f"missing field '{key}'")
    v = obj[key]
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        _fail(path, record, f"'{key}' must be a non-negative integer, got {v!r}")
    return v


def _as_str(obj: dict, key: str, path: str, record: str) -> str:
    if key not in obj:
        _fail(path, record, f"missing field '{key}'")
    if not isinstance(obj[key], str):
        _fail(path, record, f"'{key}' must be a string, got {type(obj[key]).__name__}")
    return obj[key]


def _reference(d: Any, path: str, record: str) -> Reference:
    if not isinstance(d, dict):
        _fail(path, record, "'reference' must be an object {image_id, annotation_id, prob}")
    for k in ("image_id", "annotation_id", "prob"):
        if k not in d:
            _fail(path, record, f"'reference' is missing '{k}'")
    prob = d["prob"]
    if not isinstance(prob, (int, float)) or isinstance(prob, bool) or not math.isfinite(prob) or not 0 <= prob <= 1:
        _fail(path, record, f"'reference.prob' must be a number in [0, 1], got {prob!r}")
    return Reference(
        image_id=_as_id(d["image_id"], path, record, "reference.image_id"),
        annotation_id=_as_id(d["annotation_id"], path, record, "reference.annotation_id"),
        prob=float(prob),
    )


def _phrase(d: Any, caption: Caption, k: int, path: str, record: str, strict: bool) -> EntityPhrase:
    if not isinstance(d, dict):
        _fail(path, record, "must be an object")
    ann_id = _as_id(d.get("annotation_id"), path, record, "annotation_id")
    phrase = _as_str(d, "phrase", path, record)
    phrase_raw = _as_str(d, "phrase_raw", path, record)
    start, end, start2 = (_as_index(d, key, path, record) for key in ("start_idx", "end_idx", "_start_idx"))
    if k >= len(caption.phrases):
        _fail(path, record, "more phrases listed than 'sentence_raw' contains")
    p = caption.phrases[k]
    # Compare against the one parser that also wrote them, so reader and writer cannot drift.
    expected = {
        "annotation_id": p.segment_id,
        "phrase": p.text,
        "phrase_raw": p.raw,
        "start_idx": p.start,
        "end_idx": p.end,
        "_start_idx": p.start,
    }
    got = {
        "annotation_id": ann_id,
        "phrase": phrase,
        "phrase_raw": phrase_raw,
        "start_idx": start,
        "end_idx": end,
        "_start_idx": start2,
    }
    if not strict:
        # Other tools' "_start_idx" conventions are not documented; training reads start/end only.
        del expected["_start_idx"]
    for key, want in expected.items():
        if got[key] != want:
            _fail(path, record, f"'{key}' is {got[key]!r} but 'sentence_raw' gives {want!r}")
    ref = _reference(d["reference"], path, record) if "reference" in d else None
    return EntityPhrase(ann_id, phrase, phrase_raw, start, end, start2, ref)


def parse_find_bench(doc: Any, path: str = "<memory>", *, strict: bool = True) -> FindBench:
    """Validate a FIND-Bench document already decoded from JSON (see the module docstring).

    ``strict`` (files this engine or ``find_ros.scenes`` wrote): every markup reading rule and every
    offset, ``_start_idx`` included. ``strict=False`` (files from other tools, e.g. the released
    FIND-Bench, whose captions were not held to our reading rules): structure, ids,
    ``sentence``/``sentence_raw`` agreement and ``start_idx``/``end_idx``; ``_start_idx`` only has to
    be a non-negative integer.
    """
    if not isinstance(doc, dict):
        _fail(path, "top level", "must be an object with 'images' and 'annotations'")
    for key in ("images", "annotations"):
        if not isinstance(doc.get(key), list):
            _fail(path, "top level", f"'{key}' must be a list")
    images: dict[int, dict[str, Any]] = {}
    for i, im in enumerate(doc["images"]):
        rec = f"images[{i}]"
        if not isinstance(im, dict):
            _fail(path, rec, "must be an object")
        iid = _as_id(im.get("id"), path, rec, "id")
        _as_str(im, "file_name", path, rec)
        if iid in images:
            _fail(path, rec, f"duplicate image id {iid}")
        images[iid] = im
    annotations: list[EntityCaption] = []
    for i, a in enumerate(doc["annotations"]):
        rec = f"annotations[{i}]"
        if not isinstance(a, dict):
            _fail(path, rec, "must be an object")
        iid = _as_id(a.get("image_id"), path, rec, "image_id")
        if iid not in images:
            _fail(path, rec, f"image_id {iid} has no entry in 'images'")
        sentence = _as_str(a, "sentence", path, rec)
        raw = _as_str(a, "sentence_raw", path, rec)
        try:
            caption = parse_caption(raw, strict=strict)
        except MarkupError as e:
            _fail(path, rec, f"'sentence_raw' is not valid markup ({e})")
        if caption.sentence != sentence:
            _fail(path, rec, f"'sentence' {sentence!r} is not 'sentence_raw' without markup ({caption.sentence!r})")
        plist = a.get("phrase")
        if not isinstance(plist, list):
            _fail(path, rec, "'phrase' must be a list")
        if len(plist) != len(caption.phrases):
            _fail(path, rec, f"'phrase' lists {len(plist)} entities but 'sentence_raw' has {len(caption.phrases)}")
        phrases = tuple(_phrase(p, caption, k, path, f"{rec}.phrase[{k}]", strict) for k, p in enumerate(plist))
        for k, p in enumerate(phrases):
            if p.reference is not None and p.reference.image_id == iid:
                _fail(path, f"{rec}.phrase[{k}]", "'reference' points into the caption's own image")
        annotations.append(EntityCaption(iid, sentence, raw, phrases))
    return FindBench(images=images, annotations=annotations)


def load_find_bench(path: str | Path, *, strict: bool = True) -> FindBench:
    """Read and validate a FIND-Bench JSON file; ``strict=False`` for files from other tools
    (see :func:`parse_find_bench`)."""
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(path, "", "FIND-Bench file not found")
    try:
        with path.open("rb") as f:
            doc = json.load(f)
    except json.JSONDecodeError as e:
        raise InputFormatError(path, f"line {e.lineno} column {e.colno}", f"not valid JSON ({e.msg})") from None
    return parse_find_bench(doc, str(path), strict=strict)
