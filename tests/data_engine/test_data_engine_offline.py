"""End to end with the offline backend: valid FIND-Bench JSON, references, stats, dry run, atomicity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.data_engine import EngineConfig, OfflineBackend, load_find_bench, run_engine
from training.data_engine.embedders import ColorShapeEmbedder
from training.data_engine.inputs import load_dataset
from training.data_engine.markup import parse_caption
from training.data_engine.workfile import atomic_write_bytes

REPO = Path(__file__).resolve().parents[2]
PHRASE_KEYS = ["annotation_id", "phrase", "phrase_raw", "start_idx", "end_idx", "_start_idx"]


def _cfg(toy, out: Path, **kw) -> EngineConfig:
    return EngineConfig(
        toy.panoptic_json, toy.images_dir, out, panoptic_dir=toy.panoptic_dir, captions_json=toy.captions_json,
        descriptions_json=toy.descriptions_json, progress=False, **kw,
    )


def test_offline_output_is_valid_find_bench_with_references(toy, tmp_path):
    out = tmp_path / "bench.json"
    summary = run_engine(_cfg(toy, out, references=True, captions_per_image=2), OfflineBackend(), ColorShapeEmbedder())
    doc = json.loads(out.read_text())
    bench = load_find_bench(out)  # the reader training uses: strict checks of every field and offset
    ds = load_dataset(toy.panoptic_json, toy.images_dir, panoptic_dir=toy.panoptic_dir)
    segs = {im.image_id: {s.id: s for s in im.segments} for im in ds.images}

    assert list(doc) == ["images", "annotations"]
    assert [im["id"] for im in doc["images"]] == [im.image_id for im in ds.images]
    assert len(doc["annotations"]) == 2 * len(ds.images) == len(bench.annotations)
    assert [a["id"] for a in doc["annotations"]] == list(range(1, len(doc["annotations"]) + 1))
    for a in doc["annotations"]:
        assert list(a) == ["id", "image_id", "sentence", "sentence_raw", "phrase"]
        caption = parse_caption(a["sentence_raw"], set(segs[a["image_id"]]))  # markup rules, ids of that image
        assert caption.sentence == a["sentence"]
        for p in a["phrase"]:
            assert list(p) == [*PHRASE_KEYS, "reference"]
            assert a["sentence"][p["start_idx"] : p["end_idx"]] == p["phrase"]
            assert p["_start_idx"] == p["start_idx"]  # see training.data_engine.schema for this reading
            assert a["sentence"].count(p["phrase"]) == 1  # FIND's mappers find phrases by text
            assert p["phrase_raw"] in a["sentence_raw"]
            ref = p["reference"]
            assert ref["image_id"] != a["image_id"]  # never the caption's own image
            assert ref["annotation_id"] in segs[ref["image_id"]]
            assert 0 < ref["prob"] <= 1

    # Attributes and spatial words come from the annotations.
    first = doc["annotations"][0]["sentence"]
    assert "of the image" in first and "in the background" in first
    colours = {"red", "green", "blue", "yellow", "white", "black"}
    assert any(w in colours for a in doc["annotations"] for w in a["sentence"].lower().split())

    stats = json.loads(summary.stats_file.read_text())
    entities = sum(len(a["phrase"]) for a in doc["annotations"])
    assert stats["images"] == 6 and stats["captions"] == 12 and stats["entities"] == entities
    assert stats["entities_per_image"] == round(entities / 6, 3)
    assert stats["visual_entities"] == entities and stats["llm_calls"] == 0
    assert summary.rejects_file.read_bytes() == b""


def test_same_category_references_stay_in_category(toy, tmp_path):
    out = tmp_path / "bench.json"
    run_engine(_cfg(toy, out, references=True, same_category=True, index="exact"), OfflineBackend(),
               ColorShapeEmbedder())
    ds = load_dataset(toy.panoptic_json, toy.images_dir, panoptic_dir=toy.panoptic_dir)
    cat = {(im.image_id, s.id): s.category_id for im in ds.images for s in im.segments}
    n = 0
    for a in load_find_bench(out).annotations:
        for p in a.phrases:
            if p.reference is not None:
                n += 1
                assert cat[(p.reference.image_id, p.reference.annotation_id)] == cat[(a.image_id, p.annotation_id)]
    assert n > 0


def test_runs_are_deterministic_and_rerun_from_work_files_is_identical(toy, tmp_path):
    a, b = tmp_path / "a" / "bench.json", tmp_path / "b" / "bench.json"
    run_engine(_cfg(toy, a, references=True), OfflineBackend(), ColorShapeEmbedder())
    run_engine(_cfg(toy, b, references=True), OfflineBackend(), ColorShapeEmbedder())
    assert a.read_bytes() == b.read_bytes()
    before = a.read_bytes()
    a.unlink()
    summary = run_engine(_cfg(toy, a, references=True), OfflineBackend(), ColorShapeEmbedder())
    assert a.read_bytes() == before  # assembled again from the work files alone
    assert summary.stats["images"] == 6


def test_torn_last_work_record_is_cut_and_redone(toy, tmp_path):
    out = tmp_path / "bench.json"
    cfg = _cfg(toy, out)
    run_engine(cfg, OfflineBackend(), None)
    expected = out.read_bytes()
    work = cfg.work / "captions.jsonl"
    lines = work.read_bytes().splitlines(keepends=True)
    work.write_bytes(b"".join(lines[:-2]) + lines[-2][: len(lines[-2]) // 2])  # as if killed mid-write
    out.unlink()
    run_engine(cfg, OfflineBackend(), None)
    assert out.read_bytes() == expected
    keys = [json.loads(ln)["key"] for ln in work.read_bytes().splitlines()[1:]]
    assert sorted(keys) == sorted(set(keys)) and len(keys) == 6  # nothing lost, nothing twice


def test_changed_settings_are_refused_on_resume(toy, tmp_path):
    out = tmp_path / "bench.json"
    run_engine(_cfg(toy, out), OfflineBackend(max_entities=4), None)
    with pytest.raises(Exception) as e:
        run_engine(_cfg(toy, out), OfflineBackend(max_entities=2), None)
    assert "max_entities: 4 → 2" in str(e.value)


def test_atomic_write_keeps_old_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "x.json"
    target.write_bytes(b"old")

    def boom(*a, **k):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temp file left behind


def test_cli_dry_run_touches_nothing_then_real_run(toy, tmp_path):
    out = tmp_path / "run" / "bench.json"
    base = [sys.executable, "-m", "training.data_engine", "--coco-panoptic", str(toy.panoptic_json), "--images",
            str(toy.images_dir), "--panoptic-dir", str(toy.panoptic_dir), "--out", str(out), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    dry = subprocess.run([*base, "--backend", "chat", "--base-url", "http://127.0.0.1:9/v1", "--model", "m",
                          "--api-key-env", "DE_TEST_UNSET_KEY", "--dry-run"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["llm_calls"] == 6 and report["images_pending"] == 6 and report["llm_calls_max"] == 6 * 3 * 5
    assert not (tmp_path / "run").exists()  # nothing created

    real = subprocess.run([*base, "--references", "--embedder", "color"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    assert real.returncode == 0, real.stderr
    assert load_find_bench(out).annotations
    again = subprocess.run([*base, "--backend", "chat", "--base-url", "http://127.0.0.1:9/v1", "--model", "m",
                            "--dry-run"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    # A different backend has its own fingerprint: the dry run says so instead of guessing.
    assert again.returncode == 2 and "other settings" in again.stderr

    bad = subprocess.run([*base[:4], str(tmp_path / "missing.json"), *base[5:]], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "missing.json" in bad.stderr and "not found" in bad.stderr
