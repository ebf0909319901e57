"""``python -m training.evaluate`` prints one strict-JSON object with every metric of the issue."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from training_helpers import subprocess_env


def test_evaluate_cli_reports_every_task(tiny_model: Path, synthetic_data: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "training.evaluate", "--model", str(tiny_model), "--data", str(synthetic_data),
         "--split", "val", "--json", "--no-progress", "--threads", "1"],
        env=subprocess_env(), capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    out = json.loads(proc.stdout, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert out["split"] == "val" and out["images"] == 8 and out["untrained"] is True
    for key in ("PQ", "SQ", "RQ", "PQ_th", "PQ_st", "mAP", "AP50", "mIoU"):
        assert key in out["generic"]
    for task in ("grounded", "interleave_grounding"):
        assert set(out[task]) == {"cIoU", "mIoU", "precision@0.5", "count"} and out[task]["count"] > 0
        assert 0.0 <= out[task]["cIoU"] <= 1.0
    # Breakdowns: grounded by expression kind (the synthetic refs carry their structured form), and
    # interleave entities on things and on stuff; the parts add up to the whole.
    kinds = [k for k in out if k.startswith("grounded_")]
    assert kinds and set(kinds) <= {"grounded_attributes", "grounded_binary", "grounded_support", "grounded_superlative"}
    assert sum(out[k]["count"] for k in kinds) == out["grounded"]["count"]
    parts = [out[k]["count"] for k in ("interleave_grounding_things", "interleave_grounding_stuff") if k in out]
    assert parts and sum(parts) == out["interleave_grounding"]["count"]
    itr = out["image_text_retrieval"]
    assert {f"{d}@{k}" for d in ("IR", "TR") for k in (1, 5, 10)} <= set(itr) and itr["queries"] == 5 * 8
    assert itr["IR@10"] == 1.0  # a gallery of 8: everything is in the top 10
    assert {"IR@5", "IR@10"} <= set(out["interleave_retrieval"])


def test_evaluate_cli_names_a_missing_split(tiny_model: Path, synthetic_data: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "training.evaluate", "--model", str(tiny_model), "--data", str(synthetic_data),
         "--split", "test", "--json"], env=subprocess_env(), capture_output=True, timeout=120)
    assert proc.returncode == 2
    assert "no image directory for split 'test'" in proc.stderr.decode()


def test_evaluate_cli_reports_mean_and_sd_over_several_datasets(tiny_model: Path, synthetic_data: Path,
                                                              tmp_path: Path) -> None:
    from find_ros.scenes import make_dataset

    other = tmp_path / "other"
    make_dataset(other, 8, seed=4, splits=("val",), size=(96, 72), progress=False)
    proc = subprocess.run(
        [sys.executable, "-m", "training.evaluate", "--model", str(tiny_model), "--data", str(synthetic_data), str(other),
         "--split", "val", "--tasks", "grounded", "--json", "--no-progress", "--threads", "1"],
        env=subprocess_env(), capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    out = json.loads(proc.stdout)
    runs = out["runs"]
    assert [Path(r["data"]).name for r in runs] == [synthetic_data.name, "other"]
    values = [r["grounded"]["cIoU"] for r in runs]
    assert abs(out["mean"]["grounded.cIoU"] - sum(values) / 2) < 1e-9
    assert abs(out["sd"]["grounded.cIoU"] - abs(values[0] - values[1]) / 2 ** 0.5) < 1e-9


def test_refs_say_what_kind_of_expression_each_sentence_is(tmp_path: Path) -> None:
    from training.data.refer import expression_kind, load_refs

    doc = {"refs": [{"ref_id": 1, "ann_id": 5, "image_id": 2, "split": "val", "sentences": [
        {"sent": "the red cone", "expression": {"relation": None}},
        {"sent": "the cone left of the box", "expression": {"relation": "left of"}},
        {"sent": "the leftmost cone", "expression": {"relation": "leftmost"}},
        {"sent": "the cone on the table", "expression": {"relation": "on the table"}},
        {"sent": "a plain refcoco sentence"}]}]}
    path = tmp_path / "refs_val.json"
    path.write_text(json.dumps(doc))
    ref = load_refs(path)[0]
    assert [ref.kind(k) for k in range(5)] == ["attributes", "binary", "superlative", "support", None]
    assert expression_kind({"relation": "under"}) is None and expression_kind("left of") is None
