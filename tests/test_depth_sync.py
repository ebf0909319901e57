"""find_ros.nodes.depth_sync: colour frames paired with depth by stamp, in either arrival order."""

from __future__ import annotations

import pytest
from sensor_msgs.msg import CameraInfo, Image

from find_ros.nodes.depth_sync import DepthSync, SyncedFrame

MS = 1_000_000


def image(stamp_ms: int, encoding: str = "rgb8") -> Image:
    msg = Image(encoding=encoding)
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ms * MS, 1_000_000_000)
    return msg


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def sync(**kwargs) -> tuple[DepthSync, list[SyncedFrame]]:
    out: list[SyncedFrame] = []
    return DepthSync(out.append, tolerance_ns=10 * MS, **kwargs), out


def stamps(frames: list[SyncedFrame]) -> list[tuple[int, int | None]]:
    def ms(msg) -> int:
        return (msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec) // MS
    return [(ms(f.image), None if f.depth is None else ms(f.depth)) for f in frames]


def test_depth_first_then_colour_pairs_at_once_with_the_newest_info() -> None:
    s, out = sync()
    info = CameraInfo(width=4)
    s.on_info(info)
    s.on_depth(image(1000, "16UC1"))
    s.on_colour(image(1005), depth_expected=True)
    assert stamps(out) == [(1005, 1000)] and out[0].info is info


def test_colour_first_waits_for_its_depth_and_the_first_camera_info() -> None:
    s, out = sync()
    s.on_colour(image(1000), depth_expected=True)
    assert out == []
    s.on_depth(image(1000, "16UC1"))
    assert out == []  # no CameraInfo yet: a pair needs one
    info = CameraInfo(width=4)
    s.on_info(info)
    assert stamps(out) == [(1000, 1000)] and out[0].info is info
    assert s.stats.with_depth == 1
    s.on_depth(image(1100, "16UC1"))
    s.on_colour(image(1100), depth_expected=True)  # later frames pair at once with the newest info
    assert stamps(out)[-1] == (1100, 1100)


def test_nearest_depth_within_tolerance_from_a_bounded_buffer() -> None:
    s, out = sync(capacity=3)
    s.on_info(CameraInfo())
    for t in (1000, 1033, 1066, 1100):
        s.on_depth(image(t, "16UC1"))
    s.on_colour(image(1064), depth_expected=True)
    s.on_colour(image(1001), depth_expected=True)  # its depth (1000) fell out of the buffer; later depth came
    assert stamps(out) == [(1064, 1066), (1001, None)]


def test_frames_without_matching_depth_go_on_alone() -> None:
    clock = Clock()
    s, out = sync(wait_s=0.5, clock=clock)
    s.on_colour(image(1000), depth_expected=False)  # no depth publisher: no wait
    s.on_colour(image(2000), depth_expected=True)
    s.on_depth(image(2100, "16UC1"))                # a later depth: 2000's own will not come
    s.on_colour(image(3000), depth_expected=True)
    s.on_colour(image(4000), depth_expected=True)   # supersedes 3000
    s.release_stale()
    assert stamps(out)[-1] == (3000, None) and len(out) == 3  # 4000 still waits
    clock.now = 0.6
    s.release_stale()                               # 4000 waited longer than wait_s
    assert stamps(out) == [(1000, None), (2000, None), (3000, None), (4000, None)]
    assert s.stats.without_depth == 4 and s.stats.with_depth == 0


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        DepthSync(lambda f: None, tolerance_ns=-1)
