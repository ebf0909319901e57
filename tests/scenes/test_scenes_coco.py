"""COCO exports load with pycocotools and agree, pixel for pixel, with the renderer's ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from scene_settings import DATASET_IMAGES, DATASET_SEED, DATASET_SPLITS, SIZE

from find_ros.image_io import read_rgb
from find_ros.scenes import render_example
from find_ros.scenes import vocabulary as V


def _rgb2id(png: np.ndarray) -> np.ndarray:
    """The COCO panoptic decoding, as panopticapi.utils.rgb2id does it."""
    png = png.astype(np.int64)
    return png[..., 0] + 256 * png[..., 1] + 256 * 256 * png[..., 2]


def _examples(dataset_dir: Path, split: str):
    manifest = json.loads((dataset_dir / "dataset.json").read_text())
    first = manifest["splits"][split]["image_ids"][0]
    for index in range(DATASET_IMAGES):
        yield first + index, render_example(DATASET_SEED, split, index, first + index, SIZE)


def test_manifest_lists_every_file(dataset_dir: Path) -> None:
    manifest = json.loads((dataset_dir / "dataset.json").read_text())
    assert list(manifest["splits"]) == list(DATASET_SPLITS)
    ids = [manifest["splits"][s]["image_ids"] for s in DATASET_SPLITS]
    assert ids == [[1, DATASET_IMAGES], [DATASET_IMAGES + 1, 2 * DATASET_IMAGES]]
    for split in manifest["splits"].values():
        for path in split["annotations"].values():
            assert (dataset_dir / path).is_file()
        assert len(list((dataset_dir / split["panoptic_dir"]).glob("*.png"))) == DATASET_IMAGES


@pytest.mark.parametrize("split", DATASET_SPLITS)
def test_instances_load_with_pycocotools_and_match_the_renderer(dataset_dir: Path, split: str) -> None:
    coco = COCO(str(dataset_dir / "annotations" / f"instances_{split}.json"))
    assert sorted(c["name"] for c in coco.loadCats(coco.getCatIds())) == sorted(V.SHAPES)
    checked = 0
    for image_id, example in _examples(dataset_dir, split):
        info = coco.loadImgs(image_id)[0]
        image = read_rgb(dataset_dir / split / info["file_name"])
        assert image.shape == (info["height"], info["width"], 3) == (SIZE[1], SIZE[0], 3)
        # JPEG of the rendered pixels: close, not equal.
        assert np.abs(image.astype(int) - example.frame.rgb.astype(int)).mean() < 6
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        things = {v.id for v in example.frame.views.values() if v.amodal_area is not None}
        assert {a["element_id"] for a in anns} == things
        for ann in anns:
            mask = coco.annToMask(ann).astype(bool)
            truth = example.frame.ids == ann["element_id"]
            assert np.array_equal(mask, truth)
            assert ann["area"] == truth.sum() == mask_utils.area(ann["segmentation"])
            assert ann["bbox"] == [int(v) for v in mask_utils.toBbox(ann["segmentation"])]
            assert ann["id"] == V.segment_id(image_id, ann["element_id"])
            thing = example.scene.thing(ann["element_id"])
            assert coco.loadCats(ann["category_id"])[0]["name"] == thing.shape == ann["attributes"]["shape"]
            assert ann["attributes"]["color"] == thing.color and ann["attributes"]["size"] == thing.size
            assert 0.0 < ann["visible_fraction"] <= 1.0
            checked += 1
    assert checked >= DATASET_IMAGES


@pytest.mark.parametrize("split", DATASET_SPLITS)
def test_panoptic_png_and_json_agree_with_the_renderer(dataset_dir: Path, split: str) -> None:
    data = json.loads((dataset_dir / "annotations" / f"panoptic_{split}.json").read_text())
    categories = {c["id"]: c for c in data["categories"]}
    assert {c["name"] for c in categories.values() if c["isthing"]} == set(V.SHAPES)
    assert {c["name"] for c in categories.values() if not c["isthing"]} >= {"floor", "wall", "table"}
    instances = json.loads((dataset_dir / "annotations" / f"instances_{split}.json").read_text())
    instance_ids = {a["id"] for a in instances["annotations"]}
    by_image = {a["image_id"]: a for a in data["annotations"]}
    for image_id, example in _examples(dataset_dir, split):
        ann = by_image[image_id]
        png = read_rgb(dataset_dir / "annotations" / f"panoptic_{split}" / ann["file_name"])
        ids = _rgb2id(png)
        segments = ann["segments_info"]
        assert sorted(np.unique(ids).tolist()) == sorted(s["id"] for s in segments)
        for s in segments:
            mask = ids == s["id"]
            element = s["id"] - image_id * V.SEGMENTS_PER_IMAGE
            assert np.array_equal(mask, example.frame.ids == element)
            assert s["area"] == mask.sum() and s["iscrowd"] == 0
            rows, cols = np.nonzero(mask)
            assert s["bbox"] == [cols.min(), rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1]
            assert (s["id"] in instance_ids) == bool(categories[s["category_id"]]["isthing"])


def test_segment_ids_are_unique_across_the_dataset(dataset_dir: Path) -> None:
    seen: set[int] = set()
    for split in DATASET_SPLITS:
        data = json.loads((dataset_dir / "annotations" / f"panoptic_{split}.json").read_text())
        ids = [s["id"] for a in data["annotations"] for s in a["segments_info"]]
        assert not seen & set(ids) and len(ids) == len(set(ids))
        seen |= set(ids)


def test_captions_load_with_pycocotools(dataset_dir: Path) -> None:
    for split in DATASET_SPLITS:
        coco = COCO(str(dataset_dir / "annotations" / f"captions_{split}.json"))
        assert len(coco.getImgIds()) == DATASET_IMAGES
        for image_id in coco.getImgIds():
            captions = [a["caption"] for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id))]
            assert len(captions) == 5
            assert all(c[0].isupper() and c.endswith(".") and "[" not in c for c in captions)
