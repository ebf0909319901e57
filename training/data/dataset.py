"""One split's annotations joined per image: the panoptic segments, captions, referring expressions
and FIND-Bench entity captions of each image, with the masks they point at.

The image list is the panoptic JSON's (else the instances file's, else the Karpathy split's, else the
captions file's). Annotations of images outside that list are dropped and counted in ``dropped``,
since COCO's files cover different image sets (RefCOCO-g is on train2014, panoptic on 2017).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from find_ros.image_io import read_rgb
from training.data.captions import load_captions, load_karpathy
from training.data.coco import CocoInstances, load_coco_instances
from training.data.refer import Ref, load_refs
from training.data.sources import DataSource
from training.data_engine.errors import InputFormatError
from training.data_engine.inputs import ImageItem, Segment, load_dataset
from training.data_engine.panoptic import rgb_to_id
from training.data_engine.schema import EntityCaption, load_find_bench


@dataclass(frozen=True)
class Sample:
    """Everything known about one image of the split."""

    image_id: int
    file_name: str
    height: int
    width: int
    segments: tuple[Segment, ...] = ()  # panoptic segments (empty without a panoptic file)
    panoptic_file: str | None = None
    captions: tuple[str, ...] = ()
    refs: tuple[Ref, ...] = ()
    entities: tuple[EntityCaption, ...] = ()


@dataclass
class Categories:
    """Category ids in a fixed order; the model sees them as class names, index = position."""

    ids: tuple[int, ...]
    names: tuple[str, ...]
    isthing: tuple[bool, ...]

    @cached_property
    def index(self) -> dict[int, int]:
        return {c: i for i, c in enumerate(self.ids)}

    @property
    def stuff_names(self) -> tuple[str, ...]:
        return tuple(n for n, t in zip(self.names, self.isthing) if not t)


@dataclass
class FindDataset:
    source: DataSource
    samples: list[Sample]
    categories: Categories
    instances: CocoInstances | None
    dropped: Counter = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.samples)

    @cached_property
    def by_id(self) -> dict[int, int]:
        return {s.image_id: i for i, s in enumerate(self.samples)}

    def image(self, sample: Sample) -> np.ndarray:
        path = Path(self.source.images) / sample.file_name
        try:
            rgb = read_rgb(path)
        except (FileNotFoundError, ValueError) as error:
            raise InputFormatError(path, f"image_id {sample.image_id}", str(error)) from None
        if rgb.shape[:2] != (sample.height, sample.width):
            raise InputFormatError(path, f"image_id {sample.image_id}",
                                   f"image is {rgb.shape[1]}x{rgb.shape[0]} but its record says {sample.width}x{sample.height}")
        return rgb

    def panoptic_ids(self, sample: Sample) -> np.ndarray:
        """(H, W) int64 segment ids of the image's panoptic PNG (0 = void)."""
        if sample.panoptic_file is None or self.source.panoptic_dir is None:
            raise ValueError(f"{self.source.name}: image {sample.image_id} has no panoptic annotation")
        png = Path(self.source.panoptic_dir) / sample.panoptic_file
        try:
            ids = rgb_to_id(read_rgb(png))
        except (FileNotFoundError, ValueError) as error:
            raise InputFormatError(png, f"image_id {sample.image_id}", str(error)) from None
        if ids.shape != (sample.height, sample.width):
            raise InputFormatError(png, f"image_id {sample.image_id}",
                                   f"PNG is {ids.shape[1]}x{ids.shape[0]} but the image record says {sample.width}x{sample.height}")
        return ids

    def object_mask(self, sample: Sample, object_id: int, panoptic: np.ndarray | None = None) -> np.ndarray:
        """(H, W) bool mask of an object named by a ref's ``ann_id`` or an entity's ``annotation_id``:
        the instances annotation with that id, else the panoptic segment with that id."""
        if self.instances is not None and object_id in self.instances.by_id:
            ann = self.instances.by_id[object_id]
            if ann.image_id == sample.image_id:
                return self.instances.decode(ann)
        if panoptic is None:
            panoptic = self.panoptic_ids(sample)
        mask = panoptic == object_id
        if not mask.any():
            raise ValueError(f"{self.source.name}: object {object_id} has no pixels in image {sample.image_id}")
        return mask


def _refs_by_image(source: DataSource, instances: CocoInstances | None, dropped: Counter) -> dict[int, list[Ref]]:
    if source.refs is None:
        return {}
    known = set(instances.by_id) if instances is not None else None
    out: dict[int, list[Ref]] = {}
    for ref in load_refs(source.refs, known):
        if source.refs_splits is not None and ref.split not in source.refs_splits:
            continue
        out.setdefault(ref.image_id, []).append(ref)
    return out


def load_split(source: DataSource) -> FindDataset:
    """Read every file of ``source`` (each reader validates its file and names any problem)."""
    dropped: Counter = Counter()
    instances = load_coco_instances(source.instances_json) if source.instances_json else None
    samples: list[Sample] = []
    if source.panoptic_json:
        pan = load_dataset(source.panoptic_json, source.images, panoptic_dir=source.panoptic_dir)
        cats = sorted(pan.categories.values(), key=lambda c: c["id"])
        categories = Categories(tuple(c["id"] for c in cats), tuple(c["name"] for c in cats),
                                tuple(bool(c["isthing"]) for c in cats))
        base: list[ImageItem | tuple[int, str, int, int]] = list(pan.images)
    elif instances is not None:
        cats = sorted(instances.categories.values(), key=lambda c: c["id"])
        categories = Categories(tuple(c["id"] for c in cats), tuple(c["name"] for c in cats), (True,) * len(cats))
        base = [(i, im["file_name"], im["height"], im["width"]) for i, im in instances.images.items()]
    else:
        categories = Categories((), (), ())
        base = []
    karpathy = load_karpathy(source.karpathy_json) if source.karpathy_json else {}
    karpathy = {i: k for i, k in karpathy.items() if k.split in source.karpathy_splits}
    if not base and karpathy:
        base = []
        for k in karpathy.values():
            path = Path(source.images) / k.file_name
            h, w = read_rgb(path).shape[:2]  # Karpathy's file has no sizes
            base.append((k.image_id, k.file_name, h, w))
    if not base and source.captions_json:
        doc = json.loads(Path(source.captions_json).read_text())
        base = [(im["id"], im["file_name"], im["height"], im["width"]) for im in doc.get("images", [])]
    if not base:
        raise ValueError(f"data source {source.name!r}: no images (give panoptic_json, instances_json, "
                         "karpathy_json or captions_json)")
    ids = {b.image_id if isinstance(b, ImageItem) else b[0] for b in base}
    captions = load_captions(source.captions_json, ids) if source.captions_json else {}
    refs = _refs_by_image(source, instances, dropped)
    entities: dict[int, list[EntityCaption]] = {}
    if source.find_bench:
        bench = load_find_bench(source.find_bench, strict=source.find_bench_strict)
        for a in bench.annotations:
            entities.setdefault(a.image_id, []).append(a)
    for name, table in (("refs", refs), ("entity captions", entities)):
        for image_id in set(table) - ids:
            dropped[name] += len(table[image_id])
    for b in base:
        if isinstance(b, ImageItem):
            iid, fname, h, w, segs, png = b.image_id, b.file_name, b.height, b.width, b.segments, b.panoptic_file
        else:
            (iid, fname, h, w), segs, png = b, (), None
        caps = captions.get(iid, ()) or (karpathy[iid].sentences if iid in karpathy else ())
        samples.append(Sample(iid, fname, h, w, segs, png, tuple(caps), tuple(refs.get(iid, ())),
                              tuple(entities.get(iid, ()))))
    return FindDataset(source=source, samples=samples, categories=categories, instances=instances, dropped=dropped)
