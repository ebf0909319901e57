"""The bounded embedding memory: search, keyframes, limits, and safe persistence."""

from __future__ import annotations

import json

import numpy as np
import pytest

from find_ros.memory import EmbeddingMemory, MemorySettings

RNG = np.random.default_rng(11)


def _vectors(n: int, dim: int = 16) -> np.ndarray:
    v = RNG.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_search_returns_the_most_similar_entries_best_first() -> None:
    vectors = _vectors(50)
    memory = EmbeddingMemory(MemorySettings(dim=16))
    for i, v in enumerate(vectors):
        memory.add(v, stamp_ns=i * 10, name=f"f{i}")
    query = vectors[17] + 0.05 * _vectors(1)[0]
    matches = memory.search(query, k=3)
    assert matches[0].name == "f17" and matches[0].stamp_ns == 170
    assert matches[0].score >= matches[1].score >= matches[2].score
    expected = np.argsort(-(vectors @ (query / np.linalg.norm(query))))[:3]
    assert [m.entry_id for m in matches] == list(expected)


def test_capacity_evicts_the_oldest_and_payload_budget_drops_old_payloads() -> None:
    memory = EmbeddingMemory(MemorySettings(dim=16, capacity=5, max_payload_bytes=300))
    for i, v in enumerate(_vectors(8)):
        memory.add(v, stamp_ns=i, payload=bytes(100))
    assert len(memory) == 5
    assert {m.stamp_ns for m in memory.search(_vectors(1)[0], k=10)} == {3, 4, 5, 6, 7}
    assert memory.payload_bytes <= 300
    assert memory.payload(7) is not None and memory.payload(3) is None


def test_keyframe_policy_skips_unchanged_views_until_the_interval_passes() -> None:
    v, other = _vectors(2)
    memory = EmbeddingMemory(MemorySettings(dim=16, min_interval_s=1.0, change_threshold=0.9))
    assert memory.consider(v, stamp_ns=0) is not None
    assert memory.consider(v, stamp_ns=500_000_000) is None          # same view, too soon
    assert memory.consider(other, stamp_ns=600_000_000) is not None  # the view changed
    assert memory.consider(other, stamp_ns=1_700_000_000) is not None  # interval passed
    assert len(memory) == 3


def test_nearest_in_time_resolves_a_stamp_within_tolerance() -> None:
    memory = EmbeddingMemory(MemorySettings(dim=16))
    ids = [memory.add(v, stamp_ns=s) for v, s in zip(_vectors(3), (1000, 2000, 3000))]
    assert memory.nearest_in_time(2100, tolerance_ns=200) == ids[1]
    assert memory.nearest_in_time(2500, tolerance_ns=200) is None


def test_save_load_round_trip_keeps_entries_payloads_and_search(tmp_path) -> None:
    memory = EmbeddingMemory(MemorySettings(dim=16, capacity=10))
    vectors = _vectors(12)
    for i, v in enumerate(vectors):
        memory.add(v, stamp_ns=i, name=f"img{i}.png", payload=f"p{i}".encode())
    memory.save(tmp_path / "mem")
    loaded = EmbeddingMemory.load(tmp_path / "mem")
    assert len(loaded) == 10
    query = vectors[9]
    assert loaded.search(query, 4) == memory.search(query, 4)
    assert loaded.payload(loaded.search(query, 1)[0].entry_id) == b"p9"
    new_id = loaded.add(vectors[0])
    assert new_id == 12  # ids continue, never reused


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda d: (d / "memory.json").write_text("{not json"), "not a find_ros memory"),
        (lambda d: (d / "embeddings.safetensors").write_bytes(b"\x00" * 20), "unreadable"),
        (lambda d: (d / "memory.json").unlink(), "memory.json is missing"),
    ],
)
def test_corrupt_memory_gives_a_clear_error(tmp_path, corrupt, message) -> None:
    memory = EmbeddingMemory(MemorySettings(dim=16))
    memory.add(_vectors(1)[0])
    memory.save(tmp_path / "m")
    corrupt(tmp_path / "m")
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        EmbeddingMemory.load(tmp_path / "m")


def test_wrong_dimension_and_zero_vectors_are_refused() -> None:
    memory = EmbeddingMemory(MemorySettings(dim=16))
    with pytest.raises(ValueError, match="16-d"):
        memory.add(np.ones(8))
    with pytest.raises(ValueError, match="zero"):
        memory.add(np.zeros(16))


def _clustered(n: int, dim: int = 16, clusters: int = 40, seed: int = 5) -> np.ndarray:
    """Vectors around a few centres, like the frames of a few places seen again and again."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    v = centres[rng.integers(0, clusters, n)] + 0.35 * rng.normal(size=(n, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_a_memory_past_its_exact_limit_switches_to_faiss_ivf_and_still_finds_the_nearest() -> None:
    settings = MemorySettings(dim=16, capacity=5000, exact_limit=400, ivf_lists=8, ivf_probe=8)
    memory = EmbeddingMemory(settings)
    vectors = _clustered(1200)
    for i, v in enumerate(vectors[:400]):
        memory.add(v, stamp_ns=i)
    assert memory.index_kind == "exact"
    for i, v in enumerate(vectors[400:], start=400):
        memory.add(v, stamp_ns=i)
    assert memory.index_kind == "faiss IVF8,Flat nprobe=8"
    # Every cell probed: the IVF answer is the exact answer, scores included.
    for query in _clustered(20, seed=9):
        assert [(m.entry_id, round(m.score, 5)) for m in memory.search(query, 10)] == [
            (m.entry_id, round(m.score, 5)) for m in memory.search_exact(query, 10)]


def test_eviction_and_persistence_work_on_the_ivf_index(tmp_path) -> None:
    settings = MemorySettings(dim=16, capacity=600, exact_limit=400, ivf_lists=8, ivf_probe=8)
    memory = EmbeddingMemory(settings)
    vectors = _clustered(1000)
    for i, v in enumerate(vectors):
        memory.add(v, stamp_ns=i * 10, name=f"f{i}", payload=b"x" if i % 100 == 0 else None)
    assert len(memory) == 600 and memory.index_kind.startswith("faiss IVF")
    # Entries 0..399 were evicted: searching for one of them never returns it.
    found = {m.entry_id for q in vectors[:50] for m in memory.search(q, 5)}
    assert found and min(found) >= 400
    assert memory.search(vectors[700], 1)[0].entry_id == 700
    assert memory.nearest_in_time(7003, tolerance_ns=5) == 700 and memory.nearest_in_time(30, 5) is None
    with pytest.raises(KeyError):
        memory.entry(10)
    memory.save(tmp_path / "mem")
    loaded = EmbeddingMemory.load(tmp_path / "mem")
    assert loaded.index_kind == memory.index_kind and len(loaded) == 600
    assert loaded.entry(700)[:2] == (7000, "f700")
    assert loaded.payload(900) == b"x" and loaded.payload(300) is None
    query = vectors[123]
    assert [m.entry_id for m in loaded.search_exact(query, 8)] == [m.entry_id for m in memory.search_exact(query, 8)]
    assert loaded.add(vectors[0]) == 1000


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(dim=0), "dim must be > 0"),
        (dict(dim=8, capacity=0), "capacity must be > 0"),
        (dict(dim=8, exact_limit=100, ivf_lists=8), "at least 39 x ivf_lists"),
        (dict(dim=8, max_payload_bytes=-1), "max_payload_bytes"),
    ],
)
def test_bad_memory_settings_are_refused_with_the_setting_named(settings, message) -> None:
    with pytest.raises(ValueError, match=message):
        MemorySettings(**settings)


def test_a_smaller_payload_budget_on_load_reads_only_the_newest_payloads(tmp_path) -> None:
    memory = EmbeddingMemory(MemorySettings(dim=8, capacity=10, max_payload_bytes=1000))
    for i in range(5):
        memory.add(np.eye(8, dtype=np.float32)[i], stamp_ns=i, payload=bytes([i]) * 100)
    folder = memory.save(tmp_path / "memory")
    meta = json.loads((folder / "memory.json").read_text())
    meta["settings"]["max_payload_bytes"] = 250
    (folder / "memory.json").write_text(json.dumps(meta))
    (folder / "payloads" / "0.bin").unlink()  # older than what fits: never opened
    loaded = EmbeddingMemory.load(folder)
    assert [loaded.payload(i) is not None for i in range(5)] == [False, False, False, True, True]
    assert loaded.payload(4) == bytes([4]) * 100 and loaded.payload_bytes == 200 and len(loaded) == 5
