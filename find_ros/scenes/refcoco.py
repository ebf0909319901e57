"""RefCOCO-style referring expressions: ``refs_<split>.json``.

The refer toolkit keeps refs as a pickled list; we write the same records as JSON:
``{"info": ..., "refs": [ref, ...]}`` with, per ref, ``ref_id``, ``ann_id`` (an annotation id of
``instances_<split>.json``, whose mask is the answer), ``image_id``, ``category_id``, ``split``,
``file_name``, ``sent_ids`` and ``sentences``: ``{"sent_id", "raw", "sent", "tokens"}`` plus
``expression``, the structured form (target attributes, relation, landmark) that
``find_ros.scenes.referring.select`` evaluates. Every sentence picks out exactly its object among
all things visible in the image.
"""

from __future__ import annotations

import re
from typing import Any

from find_ros.scenes.coco import info
from find_ros.scenes.records import ImageRecord

_WORD = re.compile(r"[a-z0-9]+")


def refs_json(records: list[ImageRecord], split: str, seed: int) -> dict[str, Any]:
    refs = []
    for record in records:
        categories = {s.element_id: s.category_id for s in record.annotation.segments}
        for element_id, expressions in sorted(record.annotation.refs.items()):
            ann_id = record.segment_id(element_id)
            sentences = []
            for k, expression in enumerate(expressions):
                text = expression["text"]
                structured = {key: value for key, value in expression.items() if key != "text"}
                if "landmark_id" in structured:
                    structured["landmark_ann_id"] = record.segment_id(structured.pop("landmark_id"))
                sentences.append({"sent_id": ann_id * 10 + k, "raw": text, "sent": text.lower(),
                                  "tokens": _WORD.findall(text.lower()), "expression": structured})
            refs.append({
                "ref_id": ann_id,
                "ann_id": ann_id,
                "image_id": record.image_id,
                "category_id": categories[element_id],
                "split": split,
                "file_name": record.file_name,
                "sent_ids": [s["sent_id"] for s in sentences],
                "sentences": sentences,
            })
    return {"info": info(split, seed, "find_ros synthetic world: referring expressions"), "refs": refs}
