"""COCO instances JSON (``instances_*.json``): object masks as polygons or RLE.

The panoptic side (PNG + JSON) is read by the data engine (:func:`training.data_engine.inputs.load_dataset`
and :func:`training.data_engine.panoptic.read_segment_masks`); this module adds the instances file,
which RefCOCO-g refers to by annotation id and which the mAP evaluation reads. Masks are decoded with
pycocotools, the format's own tool, so a file it cannot read is rejected here rather than mid-run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.data_engine.errors import InputFormatError, require_ints
from training.data_engine.inputs import _read_json


@dataclass(frozen=True)
class Instance:
    id: int
    image_id: int
    category_id: int
    segmentation: Any  # polygons (list of lists) or RLE (dict with 'counts' and 'size')
    bbox: tuple[float, float, float, float]
    area: float
    iscrowd: bool


@dataclass
class CocoInstances:
    path: Path
    images: dict[int, dict[str, Any]]
    categories: dict[int, dict[str, Any]]
    by_image: dict[int, list[Instance]]
    by_id: dict[int, Instance]

    def decode(self, ann: Instance) -> np.ndarray:
        """(H, W) bool mask of one annotation."""
        from pycocotools import mask as mask_utils

        info = self.images[ann.image_id]
        h, w = int(info["height"]), int(info["width"])
        seg = ann.segmentation
        if isinstance(seg, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
        elif isinstance(seg["counts"], list):  # uncompressed RLE (crowd regions)
            rle = mask_utils.frPyObjects(seg, h, w)
        else:
            rle = {"size": seg["size"], "counts": seg["counts"].encode() if isinstance(seg["counts"], str) else seg["counts"]}
        return mask_utils.decode(rle).astype(bool)


def _fail(path: Path, record: str, reason: str) -> None:
    raise InputFormatError(path, record, reason)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_segmentation(seg: Any, h: int, w: int, path: Path, rec: str) -> None:
    if isinstance(seg, list):
        if not seg:
            _fail(path, rec, "'segmentation' is an empty polygon list")
        for k, poly in enumerate(seg):
            if not (isinstance(poly, list) and len(poly) >= 6 and len(poly) % 2 == 0 and all(_number(v) for v in poly)):
                _fail(path, rec, f"'segmentation[{k}]' must be a flat list of x,y numbers with at least 3 points")
        return
    if not isinstance(seg, dict) or "counts" not in seg or "size" not in seg:
        _fail(path, rec, "'segmentation' must be a polygon list or an RLE object {counts, size}")
    size = seg["size"]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size)):
        _fail(path, rec, f"RLE 'size' must be [height, width], got {size!r}")
    if list(size) != [h, w]:
        _fail(path, rec, f"RLE 'size' {size} does not match the image record's [height, width] [{h}, {w}]")
    counts = seg["counts"]
    if isinstance(counts, list):
        if not all(isinstance(c, int) and c >= 0 for c in counts) or sum(counts) != h * w:
            _fail(path, rec, f"uncompressed RLE counts must be non-negative integers summing to {h * w}")
    elif isinstance(counts, str):
        from pycocotools import mask as mask_utils

        try:
            area = int(mask_utils.area({"size": size, "counts": counts.encode()}))
        except Exception as error:  # pycocotools raises plain Exceptions on garbage strings
            _fail(path, rec, f"RLE 'counts' string does not decode ({error})")
        if area < 0:
            _fail(path, rec, "RLE 'counts' string does not decode")
    else:
        _fail(path, rec, f"RLE 'counts' must be a string or a list of integers, got {type(counts).__name__}")


def load_coco_instances(path: str | Path) -> CocoInstances:
    """Read and validate a COCO instances JSON; raises :class:`InputFormatError` on any problem."""
    path = Path(path)
    doc = _read_json(path, "COCO instances")
    if not isinstance(doc, dict):
        _fail(path, "top level", "must be an object with images, annotations, categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            _fail(path, "top level", f"'{key}' must be a list")
    categories: dict[int, dict[str, Any]] = {}
    for i, c in enumerate(doc["categories"]):
        rec = f"categories[{i}]"
        if not isinstance(c, dict) or not isinstance(c.get("id"), int) or not isinstance(c.get("name"), str):
            _fail(path, rec, "must be an object with an integer 'id' and a string 'name'")
        if c["id"] in categories:
            _fail(path, rec, f"duplicate category id {c['id']}")
        categories[c["id"]] = c
    images: dict[int, dict[str, Any]] = {}
    for i, im in enumerate(doc["images"]):
        rec = f"images[{i}]"
        if not isinstance(im, dict):
            _fail(path, rec, "must be an object")
        require_ints(path, rec, im, ("id", "height", "width"))
        if not isinstance(im.get("file_name"), str):
            _fail(path, rec, "'file_name' must be a string")
        if im["id"] in images:
            _fail(path, rec, f"duplicate image id {im['id']}")
        images[im["id"]] = im
    by_image: dict[int, list[Instance]] = {}
    by_id: dict[int, Instance] = {}
    for i, a in enumerate(doc["annotations"]):
        rec = f"annotations[{i}]"
        if not isinstance(a, dict):
            _fail(path, rec, "must be an object")
        require_ints(path, rec, a, ("id", "image_id", "category_id"))
        rec = f"annotations[{i}] (id {a['id']})"
        if a["id"] in by_id:
            _fail(path, rec, f"duplicate annotation id {a['id']}")
        if a["image_id"] not in images:
            _fail(path, rec, f"image_id {a['image_id']} has no entry in 'images'")
        if a["category_id"] not in categories:
            _fail(path, rec, f"category_id {a['category_id']} is not in 'categories'")
        bbox = a.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_number(v) for v in bbox)) or bbox[2] < 0 or bbox[3] < 0:
            _fail(path, rec, f"'bbox' must be [x, y, w, h] with w, h >= 0, got {bbox!r}")
        if "segmentation" not in a:
            _fail(path, rec, "missing field 'segmentation'")
        info = images[a["image_id"]]
        _check_segmentation(a["segmentation"], info["height"], info["width"], path, rec)
        area = a.get("area", bbox[2] * bbox[3])
        if not _number(area) or area < 0:
            _fail(path, rec, f"'area' must be a number >= 0, got {area!r}")
        inst = Instance(a["id"], a["image_id"], a["category_id"], a["segmentation"], tuple(float(v) for v in bbox),
                        float(area), bool(a.get("iscrowd", 0)))
        by_id[inst.id] = inst
        by_image.setdefault(inst.image_id, []).append(inst)
    return CocoInstances(path=path, images=images, categories=categories, by_image=by_image, by_id=by_id)
