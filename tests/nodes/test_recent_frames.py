"""RecentFrames: the exact pixels of the frames a node processed, bounded by count and by bytes."""

import numpy as np

from find_ros.nodes.recent_frames import RecentFrames


def frame(value: int, shape: tuple[int, int] = (4, 5)) -> np.ndarray:
    return np.full((*shape, 3), value, dtype=np.uint8)


def test_nearest_within_tolerance_is_an_exact_copy() -> None:
    recent = RecentFrames(max_frames=3, max_bytes=1 << 20)
    noisy = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    recent.add(100, frame(1))
    recent.add(200, noisy)
    got = recent.nearest(190, tolerance_ns=15)
    assert got is not None and np.array_equal(got, noisy)  # lossless, unlike the JPEG it replaced
    got[:] = 0
    assert np.array_equal(recent.nearest(200, 0), noisy)  # callers may write to what they get
    assert recent.nearest(150, tolerance_ns=10) is None
    assert RecentFrames(3, 1 << 20).nearest(0, 10**9) is None


def test_count_bound_drops_the_oldest() -> None:
    recent = RecentFrames(max_frames=2, max_bytes=1 << 20)
    for stamp in (1, 2, 3):
        recent.add(stamp * 1000, frame(stamp))
    assert len(recent) == 2 and recent.nearest(1000, 0) is None
    assert recent.nearest(3000, 0)[0, 0, 0] == 3


def test_byte_bound_keeps_fewer_large_frames() -> None:
    one = frame(0, (10, 10)).nbytes  # 300 bytes
    recent = RecentFrames(max_frames=30, max_bytes=2 * one + 10)
    for stamp in range(5):
        recent.add(stamp, frame(stamp, (10, 10)))
    assert len(recent) == 2 and recent.nbytes == 2 * one
    assert [recent.nearest(s, 0) is not None for s in range(5)] == [False, False, False, True, True]
    recent.add(9, frame(9, (20, 20)))  # larger than the whole bound: not kept, nothing evicted for it
    assert len(recent) == 2 and recent.nearest(9, 0) is None
    recent.clear()
    assert len(recent) == 0 and recent.nbytes == 0


def test_zero_frames_keeps_nothing() -> None:
    recent = RecentFrames(max_frames=0, max_bytes=1 << 20)
    recent.add(1, frame(1))
    assert len(recent) == 0 and recent.nearest(1, 10) is None
