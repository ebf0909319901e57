"""The bounded embedding memory: search, keyframes, limits, and safe persistence."""

from __future__ import annotations

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
