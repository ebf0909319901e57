"""The teacher cache: round trip and key, damaged entries discarded, least recently used pruned."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from find_ros.fields.cache import TeacherCache, TeacherSettings


def _grids(shapes, dim=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(ny, nx, dim, generator=g) for ny, nx in shapes]


def test_cache_round_trip_and_key(tmp_path: Path) -> None:
    cache = TeacherCache(tmp_path, 1 << 30)
    settings = TeacherSettings("crops", (0.3, 0.6), 0.5)
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    path = cache.entry("ab" * 32, settings, image)
    assert cache.read(path, [(2, 3)], None) is None
    grids = _grids([(2, 3), (1, 1)])
    cache.write(path, grids)
    back = cache.read(path, [(2, 3), (1, 1)], 4)
    assert back is not None
    for a, b in zip(back, grids):
        torch.testing.assert_close(a.float(), b.half().float())
    # Anything that changes the teacher changes the key.
    other = image.copy()
    other[0, 0, 0] = 1
    assert cache.entry("ab" * 32, settings, other) != path
    assert cache.entry("cd" * 32, settings, image) != path
    assert cache.entry("ab" * 32, TeacherSettings("crops", (0.3, 0.5), 0.5), image) != path
    assert cache.entry("ab" * 32, TeacherSettings("dense"), image) != path
    assert cache.entry("ab" * 32, TeacherSettings("dense"), image) == cache.entry(
        "ab" * 32, TeacherSettings("dense", (0.1,), 0.2), image)  # crop settings do not touch the dense teacher


def test_cache_discards_mismatched_or_corrupt_entries(tmp_path: Path) -> None:
    cache = TeacherCache(tmp_path, 1 << 30)
    path = cache.entry("ab" * 32, TeacherSettings("dense"), np.zeros((4, 4, 3), np.uint8))
    cache.write(path, _grids([(2, 2)]))
    assert cache.read(path, [(3, 2)], None) is None and not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a safetensors file")
    assert cache.read(path, [(2, 2)], None) is None and not path.exists()


def test_cache_prunes_least_recently_used_but_never_current_entries(tmp_path: Path) -> None:
    cache = TeacherCache(tmp_path, 0)
    paths = []
    for k in range(4):
        p = cache.entry("ab" * 32, TeacherSettings("dense"), np.full((4, 4, 3), k, np.uint8))
        cache.write(p, _grids([(8, 8)], dim=16, seed=k))
        os.utime(p, (1000 + k, 1000 + k))
        paths.append(p)
    size = paths[0].stat().st_size
    cache.max_bytes = 2 * size
    assert cache.prune(keep={paths[0]}) == 2  # oldest kept (current run), next two oldest deleted
    assert [p.exists() for p in paths] == [True, False, False, True]
    assert cache.prune(keep=set()) == 0
