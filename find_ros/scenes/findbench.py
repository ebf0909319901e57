"""FIND-Bench entity files: ``entity_<split>.json`` (one short grounded caption per image) and
``entity_<split>_long.json`` (a paragraph per image), in the released schema::

    {"images": [{"id", "file_name", "height", "width"}],
     "annotations": [{"id", "image_id", "sentence", "sentence_raw",
                      "phrase": [{"annotation_id", "phrase", "phrase_raw",
                                  "start_idx", "end_idx", "_start_idx",
                                  "reference": {"image_id", "annotation_id", "prob"}}]}]}

``annotation_id`` is a panoptic segment id of ``panoptic_<split>.json`` (as in FIND, whose mappers
match it against the panoptic PNG); ``sentence_raw`` marks each entity as ``[segment_id]<text>``;
``sentence[start_idx:end_idx] == phrase``. ``reference`` (interleave grounding / retrieval) names
a similar segment in another image of the same split, present when one exists
(``find_ros.scenes.interleave``).
"""

from __future__ import annotations

from typing import Any

from find_ros.scenes.captions import parse_markup
from find_ros.scenes.coco import info
from find_ros.scenes.records import ImageRecord


def entity_json(records: list[ImageRecord], references: dict[int, dict[str, Any]], split: str, seed: int,
                long: bool) -> dict[str, Any]:
    images, annotations = [], []
    for record in records:
        images.append(record.image_entry())
        sentence_raw = record.annotation.grounded_long if long else record.annotation.grounded_short
        sentence, phrases = parse_markup(sentence_raw)
        for phrase in phrases:
            if sentence.count(phrase["phrase"]) != 1:
                raise AssertionError(f"image {record.image_id}: phrase {phrase['phrase']!r} occurs "
                                     f"{sentence.count(phrase['phrase'])} times in {sentence!r}")
            if phrase["annotation_id"] in references:
                phrase["reference"] = references[phrase["annotation_id"]]
        annotations.append({"id": record.image_id, "image_id": record.image_id, "sentence": sentence,
                            "sentence_raw": sentence_raw, "phrase": phrases})
    kind = "long grounded captions" if long else "grounded captions"
    return {"info": info(split, seed, f"find_ros synthetic world: FIND-Bench entities, {kind}"),
            "images": images, "annotations": annotations}
