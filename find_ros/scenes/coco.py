"""COCO exports: instances (things, RLE masks), panoptic (PNG + JSON, things and stuff) and captions.

Formats, as the COCO tools read them:

* ``instances_<split>.json``: ``images``, ``annotations`` with ``id`` (= panoptic segment id),
  ``image_id``, ``category_id``, ``segmentation`` (compressed RLE, ``counts`` as text), ``area``
  (mask pixels), ``bbox`` ``[x, y, w, h]`` of the mask, ``iscrowd`` 0; ``categories`` (things).
  Extra keys per annotation, ignored by pycocotools: ``attributes`` (shape, color, size, material,
  texture, support), ``center_camera`` (object centre in the camera's OpenCV frame, metres),
  ``radius`` (bounding-sphere radius), ``visible_fraction`` (visible / unoccluded, unclipped
  area) and ``element_id`` (the object's id in its scene). Each image entry also carries ``camera``
  (fx, fy, cx, cy in the OpenCV pixel-centre convention and ``world_from_camera``) and ``scene``.
* ``panoptic_<split>.json`` + ``panoptic_<split>/<image_id:012d>.png`` (both in ``annotations/``,
  as in COCO's release): the PNG encodes segment id = R + 256 G + 256² B (0 = void);
  ``segments_info`` holds ``id``, ``category_id``, ``iscrowd``, ``bbox``, ``area``;
  ``categories`` lists things and stuff with ``isthing``.
  Segment ids are unique across the dataset: ``image_id * 100 + element id``.
* ``captions_<split>.json``: ``images`` and ``annotations`` of ``id`` (``image_id * 10 + k``),
  ``image_id``, ``caption`` (five per image).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from find_ros.scenes import vocabulary as V
from find_ros.scenes.records import ImageRecord


def info(split: str, seed: int, description: str) -> dict[str, Any]:
    # No creation date: outputs must be byte-identical for a seed.
    return {"description": description, "version": "1.0", "contributor": "find_ros.scenes", "split": split, "seed": seed}


def panoptic_png(ids: np.ndarray, image_id: int) -> np.ndarray:
    """RGB uint8 panoptic label image of a frame's element ids (0 stays void)."""
    segment = np.where(ids > 0, image_id * V.SEGMENTS_PER_IMAGE + ids.astype(np.int64), 0)
    return np.stack([segment % 256, (segment // 256) % 256, segment // 65536], axis=-1).astype(np.uint8)


def instances_json(records: list[ImageRecord], split: str, seed: int) -> dict[str, Any]:
    images, annotations = [], []
    for record in records:
        images.append({**record.image_entry(), "camera": record.camera, "scene": record.scene_kind})
        for segment in record.annotation.segments:
            if not segment.isthing:
                continue
            annotations.append({
                "id": record.segment_id(segment.element_id),
                "image_id": record.image_id,
                "category_id": segment.category_id,
                "segmentation": record.rles[segment.element_id],
                "area": segment.area,
                "bbox": list(segment.bbox),
                "iscrowd": 0,
                "attributes": segment.attributes,
                "center_camera": [round(v, 6) for v in segment.center_camera],
                "radius": round(segment.radius, 6),
                "visible_fraction": round(segment.visible_fraction, 6),
                "element_id": segment.element_id,
            })
    return {"info": info(split, seed, "find_ros synthetic world: instances"), "licenses": [], "images": images,
            "annotations": annotations, "categories": [c.to_coco() for c in V.THING_CATEGORIES]}


def panoptic_json(records: list[ImageRecord], split: str, seed: int) -> dict[str, Any]:
    images, annotations = [], []
    for record in records:
        images.append(record.image_entry())
        annotations.append({
            "image_id": record.image_id,
            "file_name": record.panoptic_file_name,
            "segments_info": [
                {"id": record.segment_id(s.element_id), "category_id": s.category_id, "iscrowd": 0,
                 "bbox": list(s.bbox), "area": s.area}
                for s in record.annotation.segments
            ],
        })
    return {"info": info(split, seed, "find_ros synthetic world: panoptic"), "licenses": [], "images": images,
            "annotations": annotations, "categories": [c.to_coco() for c in V.CATEGORIES]}


def captions_json(records: list[ImageRecord], split: str, seed: int) -> dict[str, Any]:
    images, annotations = [], []
    for record in records:
        images.append(record.image_entry())
        for k, caption in enumerate(record.annotation.captions):
            annotations.append({"id": record.image_id * 10 + k, "image_id": record.image_id, "caption": caption})
    return {"info": info(split, seed, "find_ros synthetic world: captions"), "licenses": [], "images": images,
            "annotations": annotations}
