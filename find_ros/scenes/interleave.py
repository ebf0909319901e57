"""Interleave references (FIND paper, section 3.1.2): each entity of a grounded caption gets a
segment of the same kind of object in *another* image, which a model sees instead of the words.

The paper picks the nearest segment by SEEM embedding; here the world's ground truth plays that
part: a reference has the same category and as many equal attributes as the split offers (colour,
size, material, texture for things; finish and texture for stuff). ``prob`` is that similarity,
(1 + equal attributes) / (1 + attributes compared), so 1.0 means "looks the same". Only eligible
(clearly visible) segments are referenced, never one in the entity's own image.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from find_ros.scenes.annotate import Segment
from find_ros.scenes.records import ImageRecord

THING_KEYS: tuple[str, ...] = ("color", "size", "material", "texture")
STUFF_KEYS: tuple[str, ...] = ("finish", "texture")


def _key(segment: Segment) -> tuple[str, ...]:
    keys = THING_KEYS if segment.isthing else STUFF_KEYS
    return tuple(segment.attributes[k] for k in keys)


def similarity(a: Segment, b: Segment) -> float:
    """(1 + equal attributes) / (1 + attributes compared); 0 for different categories."""
    if a.category != b.category:
        return 0.0
    ka, kb = _key(a), _key(b)
    return (1 + sum(x == y for x, y in zip(ka, kb))) / (1 + len(ka))


def assign_references(records: list[ImageRecord], rng: np.random.Generator) -> dict[int, dict[str, Any]]:
    """``{segment_id: {"image_id", "annotation_id", "prob"}}`` for every eligible segment that has
    a same-category eligible segment in another image of ``records``."""
    # category -> attribute key -> [(image_id, segment_id, segment)] in dataset order
    buckets: dict[str, dict[tuple[str, ...], list[tuple[int, int, Segment]]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        for segment in record.annotation.segments:
            if segment.eligible:
                entry = (record.image_id, record.segment_id(segment.element_id), segment)
                buckets[segment.category][_key(segment)].append(entry)

    references: dict[int, dict[str, Any]] = {}
    for record in records:
        for segment in record.annotation.segments:
            if not segment.eligible:
                continue
            by_key = buckets[segment.category]
            # Best-matching attribute groups first; ties in a fixed (sorted) order for determinism.
            ranked = sorted(by_key, key=lambda k: (-similarity(segment, by_key[k][0][2]), k))
            for key in ranked:
                bucket = by_key[key]
                start = int(rng.integers(len(bucket)))
                for step in range(len(bucket)):
                    image_id, segment_id, other = bucket[(start + step) % len(bucket)]
                    if image_id != record.image_id:
                        references[record.segment_id(segment.element_id)] = {
                            "image_id": image_id,
                            "annotation_id": segment_id,
                            "prob": round(similarity(segment, other), 4),
                        }
                        break
                else:
                    continue
                break
    return references
