"""Malformed inputs fail with the file, the record and the reason; the FIND-Bench reader checks offsets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training.data_engine import EngineConfig, OfflineBackend, run_engine
from training.data_engine.embedders import ColorShapeEmbedder
from training.data_engine.errors import InputFormatError
from training.data_engine.inputs import load_dataset
from training.data_engine.panoptic import id_to_rgb, rgb_to_id
from training.data_engine.schema import load_find_bench


def _load(toy, **kw):
    return load_dataset(toy.panoptic_json, toy.images_dir, panoptic_dir=toy.panoptic_dir, **kw)


def _edit(path: Path, fn) -> None:
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def test_toy_dataset_loads_with_captions_and_descriptions(toy):
    ds = _load(toy, captions_json=toy.captions_json, descriptions_json=toy.descriptions_json)
    assert len(ds.images) == 6
    item = ds.images[0]
    assert item.captions and item.pseudo_descriptions
    assert {s.category for s in item.segments} >= {"sky-other-merged", "grass-merged"}
    things = [s for s in item.segments if s.isthing]
    assert things and all(s.descriptions for s in things)  # colour names from the descriptions file


def test_panoptic_colour_ids_round_trip():
    ids = np.array([[0, 1, 255], [256, 65536, 2**24 - 1]])
    assert (rgb_to_id(id_to_rgb(ids)) == ids).all()


def test_not_json_names_file_and_position(toy):
    toy.panoptic_json.write_text('{"images": [')
    with pytest.raises(InputFormatError) as e:
        _load(toy)
    assert str(toy.panoptic_json) in str(e.value) and "not valid JSON" in str(e.value) and "line 1" in str(e.value)


@pytest.mark.parametrize(
    "mutate, record, reason",
    [
        (lambda d: d["annotations"][0]["segments_info"][1].__setitem__("bbox", [1, 2]),
         "annotations[0] (image_id 1000).segments_info[1]", "'bbox' must be 4 finite numbers"),
        (lambda d: d["annotations"][1]["segments_info"][0].__setitem__("category_id", 999),
         "annotations[1] (image_id 1001).segments_info[0]", "category_id 999 is not in 'categories'"),
        (lambda d: d["annotations"][0]["segments_info"].append(dict(d["annotations"][0]["segments_info"][0])),
         "annotations[0] (image_id 1000).segments_info", "duplicate segment id"),
        (lambda d: d["images"][2].pop("height"), "images[2]", "missing field 'height'"),
        (lambda d: d["annotations"][3].__setitem__("image_id", 77), "annotations[3] (image_id 77)",
         "image_id 77 has no entry in 'images'"),
        (lambda d: d.pop("categories"), "top level", "missing field 'categories'"),
    ],
)
def test_malformed_panoptic_json(toy, mutate, record, reason):
    _edit(toy.panoptic_json, mutate)
    with pytest.raises(InputFormatError) as e:
        _load(toy)
    msg = str(e.value)
    assert msg.startswith(str(toy.panoptic_json)), msg
    assert record in msg and reason in msg, msg


def test_malformed_captions_and_descriptions(toy):
    _edit(toy.captions_json, lambda d: d["annotations"][4].pop("caption"))
    with pytest.raises(InputFormatError) as e:
        _load(toy, captions_json=toy.captions_json)
    assert str(toy.captions_json) in str(e.value) and "annotations[4]" in str(e.value) and "'caption'" in str(e.value)

    _edit(toy.descriptions_json, lambda d: d["images"][1]["segments"].append({"id": 5, "descriptions": ["x"]}))
    with pytest.raises(InputFormatError) as e:
        _load(toy, descriptions_json=toy.descriptions_json)
    assert "images[1].segments" in str(e.value) and "segment id 5 is not a segment of image 1001" in str(e.value)


def test_png_that_disagrees_with_segments_info_is_reported(toy, tmp_path):
    png = toy.panoptic_dir / "000000001002.png"
    png.write_bytes(b"not a png")
    cfg = EngineConfig(toy.panoptic_json, toy.images_dir, tmp_path / "o.json", panoptic_dir=toy.panoptic_dir,
                       references=True, progress=False)
    with pytest.raises(InputFormatError) as e:
        run_engine(cfg, OfflineBackend(), ColorShapeEmbedder())
    assert str(png) in str(e.value) and "image_id 1002" in str(e.value)


def test_reader_rejects_inconsistent_files(tmp_path):
    good = {
        "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
        "annotations": [{
            "image_id": 1, "sentence": "A dog runs on the grass.",
            "sentence_raw": "[10]<A dog> runs on [11]<the grass>.",
            "phrase": [
                {"annotation_id": 10, "phrase": "A dog", "phrase_raw": "[10]<A dog>", "start_idx": 0, "end_idx": 5,
                 "_start_idx": 0, "reference": {"image_id": 2, "annotation_id": 20, "prob": 0.7}},
                {"annotation_id": "11", "phrase": "the grass", "phrase_raw": "[11]<the grass>", "start_idx": 14,
                 "end_idx": 23, "_start_idx": 14},
            ],
        }],
    }
    path = tmp_path / "fb.json"
    path.write_text(json.dumps(good))
    fb = load_find_bench(path)
    assert fb.annotations[0].phrases[1].annotation_id == 11  # decimal strings are read as ids
    assert fb.annotations[0].phrases[0].reference.image_id == 2

    def broken(mutate):
        doc = json.loads(json.dumps(good))
        mutate(doc)
        path.write_text(json.dumps(doc))
        with pytest.raises(InputFormatError) as e:
            load_find_bench(path)
        return str(e.value)

    msg = broken(lambda d: d["annotations"][0]["phrase"][1].__setitem__("start_idx", 13))
    assert "annotations[0].phrase[1]" in msg and "'start_idx' is 13" in msg
    # _start_idx is the start in `sentence` too (not in sentence_raw, where this phrase starts at 20).
    msg = broken(lambda d: d["annotations"][0]["phrase"][1].__setitem__("_start_idx", 20))
    assert "'_start_idx' is 20 but 'sentence_raw' gives 14" in msg
    msg = broken(lambda d: d["annotations"][0]["phrase"][0]["reference"].__setitem__("image_id", 1))
    assert "own image" in msg
    msg = broken(lambda d: d["annotations"][0].__setitem__("sentence", "A dog runs."))
    assert "is not 'sentence_raw' without markup" in msg
    msg = broken(lambda d: d["annotations"][0]["phrase"].pop())
    assert "lists 1 entities but 'sentence_raw' has 2" in msg

    # Another tool's _start_idx convention is tolerated when reading non-strictly; start/end never are.
    doc = json.loads(json.dumps(good))
    doc["annotations"][0]["phrase"][1]["_start_idx"] = 20
    path.write_text(json.dumps(doc))
    assert load_find_bench(path, strict=False).annotations[0].phrases[1].underscore_start_idx == 20
