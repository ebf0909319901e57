"""`find-ros scenes make`: a COCO-layout dataset of single views of random scenes.

Layout of ``OUT`` (detectron2 / FIND conventions; ``<split>`` as given, e.g. train, val)::

    OUT/dataset.json                          what was made: seed, size, splits, image ids, files
    OUT/<split>/<image_id:012d>.jpg           rendered images (JPEG, quality 95)
    OUT/annotations/panoptic_<split>/<image_id:012d>.png  panoptic labels, id = R + 256 G + 256^2 B
    OUT/annotations/instances_<split>.json    COCO instances (things, RLE)         -> coco.py
    OUT/annotations/panoptic_<split>.json     COCO panoptic (things + stuff)        -> coco.py
    OUT/annotations/captions_<split>.json     COCO captions, five per image         -> coco.py
    OUT/annotations/refs_<split>.json         RefCOCO-style referring expressions  -> refcoco.py
    OUT/annotations/entity_<split>.json       FIND-Bench grounded captions         -> findbench.py
    OUT/annotations/entity_<split>_long.json  FIND-Bench grounded paragraphs       -> findbench.py

The panoptic PNG folder sits next to its JSON, as in COCO's release (and panopticapi's default).
Image ids run from 1 over all splits in the order given; segment / annotation ids are
``image_id * 100 + element id`` and unique in the whole dataset. Every image is its own random
scene, drawn from ``SeedSequence(seed, spawn_key=(crc32(split), index))``: the same seed gives
byte-identical files, and an image does not change when other images or splits are added.
"""

from __future__ import annotations

import re
import shutil
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from find_ros.scenes import vocabulary as V
from find_ros.scenes.annotate import ViewAnnotation, annotate
from find_ros.scenes.camera import Intrinsics
from find_ros.scenes.coco import captions_json, instances_json, panoptic_json, panoptic_png
from find_ros.scenes.files import write_image, write_json
from find_ros.scenes.findbench import entity_json
from find_ros.scenes.interleave import assign_references
from find_ros.scenes.records import ImageRecord
from find_ros.scenes.refcoco import refs_json
from find_ros.scenes.render import Frame, Renderer
from find_ros.scenes.viewpoints import sample_view
from find_ros.scenes.world import Scene, sample_scene

MAX_IMAGES_PER_SPLIT = 100_000
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def generators(seed: int, *key: int, count: int = 4) -> list[np.random.Generator]:
    """Independent generators for one unit of work, so that changing how one stage draws numbers
    (say, the captions) leaves the others (the scene, the pixels) unchanged."""
    sequence = np.random.SeedSequence(entropy=int(seed), spawn_key=tuple(int(k) for k in key))
    return [np.random.default_rng(s) for s in sequence.spawn(count)]


def split_key(split: str) -> int:
    return zlib.crc32(split.encode("utf-8"))


@dataclass
class Example:
    scene: Scene
    frame: Frame
    annotation: ViewAnnotation


def render_example(seed: int, split: str, index: int, image_id: int, size: tuple[int, int] = (320, 240),
                   renderer_cache: dict | None = None) -> Example:
    """Scene, rendered frame and annotation of image ``index`` of ``split`` (what ``make_dataset``
    writes for that image)."""
    scene_rng, view_rng, sensor_rng, language_rng = generators(seed, split_key(split), index)
    intrinsics = Intrinsics.from_fov(*size, hfov_deg=float(view_rng.uniform(55.0, 70.0)))
    scene = sample_scene(scene_rng)
    pose = sample_view(scene, intrinsics, view_rng)
    frame = Renderer(scene).render(pose, intrinsics, sensor_rng)
    return Example(scene, frame, annotate(scene, frame, image_id, language_rng))


def check_splits(splits: Sequence[str]) -> list[str]:
    splits = [s.strip() for s in splits]
    if not splits or any(not s for s in splits):
        raise ValueError("splits must be a non-empty, comma-separated list such as train,val")
    for s in splits:
        if not _SPLIT_NAME.match(s):
            raise ValueError(f"bad split name {s!r}: use letters, digits, '_' or '-'")
    if len(set(splits)) != len(splits):
        raise ValueError(f"split names repeat: {','.join(splits)}")
    return splits


OUTPUT_MARKERS: tuple[str, ...] = ("dataset.json", "ground_truth.json")


def prepare_output(out: Path, force: bool) -> Path:
    """A new or empty output directory. ``force`` replaces an earlier output of these commands
    (recognised by its dataset.json or ground_truth.json), never an arbitrary folder."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output path {out} exists and is not a directory")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise ValueError(f"output directory {out} is not empty; choose another or pass --force to replace it")
        if not any((out / marker).is_file() for marker in OUTPUT_MARKERS):
            raise ValueError(f"--force refused: {out} is not empty and holds no {' or '.join(OUTPUT_MARKERS)}, "
                             "so it is not an earlier output of find-ros scenes")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def make_dataset(
    out: str | Path,
    images: int,
    seed: int,
    splits: Sequence[str] = ("train",),
    size: tuple[int, int] = (320, 240),
    force: bool = False,
    progress: bool = True,
    workers: int = 1,
) -> dict[str, Any]:
    """Render ``images`` images per split and write every export; returns the manifest
    (also written to ``OUT/dataset.json``). ``workers`` > 1 renders in that many processes; the
    files are the same whatever the number."""
    if not isinstance(images, int) or images < 1:
        raise ValueError(f"--images must be a positive integer, got {images!r}")
    if images > MAX_IMAGES_PER_SPLIT:
        raise ValueError(f"--images {images} is more than {MAX_IMAGES_PER_SPLIT} per split")
    splits = check_splits(splits)
    if images * len(splits) > V.MAX_IMAGE_ID:
        raise ValueError(f"{images * len(splits)} images exceed the {V.MAX_IMAGE_ID} that panoptic ids can number")
    if not isinstance(workers, int) or not 1 <= workers <= 64:
        raise ValueError(f"--workers must be within 1..64, got {workers!r}")
    Intrinsics.from_fov(*size)  # validates the size before any work
    out = prepare_output(Path(out), force)

    from tqdm import tqdm

    manifest: dict[str, Any] = {"format": "find_ros.scenes/dataset", "version": 1, "seed": int(seed),
                                "size": list(size), "images_per_split": images, "splits": {}}
    bar = tqdm(total=images * len(splits), desc="scenes make", unit="img", disable=not progress)
    pool = _pool(workers)
    image_id = 1
    try:
        for split in splits:
            first = image_id
            jobs = [(str(out), seed, split, index, first + index, size) for index in range(images)]
            records: list[ImageRecord] = []
            # imap keeps job order, so records (and the JSONs) do not depend on the worker count.
            for record in (pool.imap(_make_image, jobs, chunksize=4) if pool else map(_make_image, jobs)):
                records.append(record)
                bar.update(1)
            image_id += images
            (interleave_rng,) = generators(seed, split_key(split), 2**32 - 1, count=1)
            references = assign_references(records, interleave_rng)
            annotations = out / "annotations"
            files = {
                "instances": write_json(annotations / f"instances_{split}.json", instances_json(records, split, seed)),
                "panoptic": write_json(annotations / f"panoptic_{split}.json", panoptic_json(records, split, seed)),
                "captions": write_json(annotations / f"captions_{split}.json", captions_json(records, split, seed)),
                "refs": write_json(annotations / f"refs_{split}.json", refs_json(records, split, seed)),
                "entity": write_json(annotations / f"entity_{split}.json",
                                     entity_json(records, references, split, seed, long=False)),
                "entity_long": write_json(annotations / f"entity_{split}_long.json",
                                          entity_json(records, references, split, seed, long=True)),
            }
            manifest["splits"][split] = {
                "images": images,
                "image_ids": [first, image_id - 1],
                "image_dir": split,
                "panoptic_dir": f"annotations/panoptic_{split}",
                "annotations": {k: str(p.relative_to(out)) for k, p in files.items()},
            }
    except BaseException:
        if pool is not None:
            pool.terminate()  # do not wait for queued images after an error or Ctrl-C
        raise
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        bar.close()
    write_json(out / "dataset.json", manifest)
    return manifest


def _pool(workers: int):  # noqa: ANN202 - a multiprocessing pool or None
    if workers == 1:
        return None
    import multiprocessing

    # spawn, not fork: open3d's thread pools do not survive a fork.
    return multiprocessing.get_context("spawn").Pool(workers)


def _make_image(job: tuple[str, int, str, int, int, tuple[int, int]]) -> ImageRecord:
    """Render one image, write its JPEG and panoptic PNG, return what the JSON exporters need."""
    out, seed, split, index, image_id, size = job
    example = render_example(seed, split, index, image_id, size)
    file_name = f"{image_id:012d}.jpg"
    write_image(Path(out) / split / file_name, example.frame.rgb)
    write_image(Path(out) / "annotations" / f"panoptic_{split}" / f"{image_id:012d}.png",
                panoptic_png(example.frame.ids, image_id))
    return ImageRecord.from_frame(image_id, split, file_name, example.scene.kind, example.frame, example.annotation)
