"""Every reader accepts the files the synthetic world writes and rejects a damaged file with a
message that names the file, the record and what is wrong."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from training.data.captions import load_karpathy
from training.data.coco import load_coco_instances
from training.data.dataset import load_split
from training.data.refer import load_refs
from training.data.sources import discover
from training.data_engine.errors import InputFormatError
from training.data_engine.inputs import load_captions
from training.data_engine.schema import load_find_bench


def _copy(data: Path, tmp_path: Path) -> Path:
    out = tmp_path / "ds"
    shutil.copytree(data, out)
    return out


def _edit(path: Path, change) -> None:  # noqa: ANN001
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_split_joins_every_annotation(synthetic_data: Path) -> None:
    data = load_split(discover(synthetic_data, "train"))
    assert len(data) == 8 and not data.dropped
    assert data.categories.names[:5] == ("sphere", "box", "cylinder", "cone", "torus")
    with_refs = [s for s in data.samples if s.refs]
    assert with_refs and all(s.captions and s.entities for s in data.samples)
    sample = with_refs[0]
    ref = sample.refs[0]
    # The instances RLE and the panoptic PNG describe the same object pixel for pixel.
    from_instances = data.object_mask(sample, ref.ann_id)
    from_panoptic = data.panoptic_ids(sample) == ref.ann_id
    assert from_instances.any() and np.array_equal(from_instances, from_panoptic)


def test_instances_reader_rejects_bad_rle(synthetic_data: Path, tmp_path: Path) -> None:
    path = _copy(synthetic_data, tmp_path) / "annotations" / "instances_train.json"
    _edit(path, lambda d: d["annotations"][1]["segmentation"].update(size=[5, 5]))
    with pytest.raises(InputFormatError) as err:
        load_coco_instances(path)
    message = str(err.value)
    assert str(path) in message and "annotations[1]" in message and "does not match" in message


def test_instances_reader_rejects_unknown_image(synthetic_data: Path, tmp_path: Path) -> None:
    path = _copy(synthetic_data, tmp_path) / "annotations" / "instances_train.json"
    _edit(path, lambda d: d["annotations"][0].update(image_id=987654))
    with pytest.raises(InputFormatError, match=r"annotations\[0\].*image_id 987654 has no entry"):
        load_coco_instances(path)


def test_panoptic_reader_rejects_truncated_json(synthetic_data: Path, tmp_path: Path) -> None:
    root = _copy(synthetic_data, tmp_path)
    path = root / "annotations" / "panoptic_train.json"
    path.write_text(path.read_text()[:-40])
    with pytest.raises(InputFormatError, match=r"panoptic_train\.json: line 1 column \d+: not valid JSON"):
        load_split(discover(root, "train"))


def test_panoptic_png_with_wrong_size_is_named(synthetic_data: Path, tmp_path: Path) -> None:
    import cv2

    root = _copy(synthetic_data, tmp_path)
    data = load_split(discover(root, "train"))
    sample = data.samples[0]
    png = Path(data.source.panoptic_dir) / sample.panoptic_file
    cv2.imwrite(str(png), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(InputFormatError, match=rf"{png.name}: image_id {sample.image_id}: PNG is 10x10"):
        data.panoptic_ids(sample)


def test_captions_reader_rejects_empty_caption(synthetic_data: Path, tmp_path: Path) -> None:
    path = _copy(synthetic_data, tmp_path) / "annotations" / "captions_train.json"
    _edit(path, lambda d: d["annotations"][3].update(caption="  "))
    with pytest.raises(InputFormatError, match=r"captions_train\.json: annotations\[3\]: 'caption' must be a non-empty string"):
        load_captions(path, {1, 2, 3})


def test_karpathy_reader(tmp_path: Path) -> None:
    path = tmp_path / "dataset_coco.json"
    good = {"images": [{"cocoid": 7, "filename": "a.jpg", "split": "test", "sentences": [{"raw": " A  dog. "}]}]}
    path.write_text(json.dumps(good))
    assert load_karpathy(path)[7].sentences == ("A dog.",)
    good["images"][0]["split"] = "holdout"
    path.write_text(json.dumps(good))
    with pytest.raises(InputFormatError, match=r"images\[0\]: 'split' must be one of train, restval, val, test"):
        load_karpathy(path)


def test_refs_reader_rejects_unknown_annotation(synthetic_data: Path, tmp_path: Path) -> None:
    path = _copy(synthetic_data, tmp_path) / "annotations" / "refs_train.json"
    _edit(path, lambda d: d["refs"][0].update(ann_id=123456789))
    known = set(load_coco_instances(path.parent / "instances_train.json").by_id)
    with pytest.raises(InputFormatError, match=r"refs\[0\] \(ref_id \d+\): ann_id 123456789 is not an annotation"):
        load_refs(path, known)


def test_refs_pickle_plain_data_loads_and_code_is_refused(tmp_path: Path) -> None:
    refs = [{"ref_id": 1, "ann_id": 5, "image_id": 2, "split": "val", "sentences": [{"sent": "the cat"}]}]
    good = tmp_path / "refs(umd).p"
    good.write_bytes(pickle.dumps(refs, protocol=2))
    assert load_refs(good)[0].sentences == ("the cat",)

    class Evil:
        def __reduce__(self):  # noqa: ANN204
            return (print, ("pwned",))

    bad = tmp_path / "evil.p"
    bad.write_bytes(pickle.dumps([Evil()]))
    with pytest.raises(InputFormatError, match=r"evil\.p: not a readable refs pickle .*refusing to load builtins\.print"):
        load_refs(bad)


def test_find_bench_reader_rejects_wrong_offsets(synthetic_data: Path, tmp_path: Path) -> None:
    path = _copy(synthetic_data, tmp_path) / "annotations" / "entity_train.json"
    _edit(path, lambda d: d["annotations"][2]["phrase"][0].update(end_idx=d["annotations"][2]["phrase"][0]["end_idx"] + 1))
    with pytest.raises(InputFormatError, match=r"entity_train\.json: annotations\[2\]\.phrase\[0\]: 'end_idx' is"):
        load_find_bench(path)


def test_discover_names_missing_images(tmp_path: Path) -> None:
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "panoptic_val.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="no image directory for split 'val'"):
        discover(tmp_path)
