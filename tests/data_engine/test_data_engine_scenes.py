"""On the synthetic world's exports (find_ros.scenes): the engine runs on its COCO panoptic files, and
the reader training uses loads its FIND-Bench entity files under the strict checks."""

from __future__ import annotations

import json

from training.data_engine import EngineConfig, OfflineBackend, load_find_bench, run_engine
from training.data_engine.embedders import ColorShapeEmbedder


def test_engine_and_reader_on_the_synthetic_world(tmp_path):
    from find_ros.scenes import make_dataset

    manifest = make_dataset(tmp_path / "world", 3, seed=11, splits=("val",), size=(96, 72), progress=False)
    split = manifest["splits"]["val"]
    root = tmp_path / "world"
    ann = split["annotations"]

    for key in ("entity", "entity_long"):  # the scenes exporter and our reader agree on every offset
        bench = load_find_bench(root / ann[key])
        assert len(bench.images) == 3 and all(a.phrases for a in bench.annotations)

    out = tmp_path / "engine" / "bench.json"
    cfg = EngineConfig(root / ann["panoptic"], root / split["image_dir"], out, panoptic_dir=root / split["panoptic_dir"],
                       captions_json=root / ann["captions"], references=True, progress=False)
    summary = run_engine(cfg, OfflineBackend(), ColorShapeEmbedder())
    ours = load_find_bench(out)
    assert len(ours.images) == 3 and summary.stats["visual_entities"] == summary.stats["entities"] > 0
    panoptic = json.loads((root / ann["panoptic"]).read_text())
    segments = {(a["image_id"], s["id"]) for a in panoptic["annotations"] for s in a["segments_info"]}
    for a in ours.annotations:
        for p in a.phrases:
            assert (a.image_id, p.annotation_id) in segments
            assert (p.reference.image_id, p.reference.annotation_id) in segments and p.reference.image_id != a.image_id
