"""Colour frames paired with the depth image of the same instant, by header stamp.

message_filters is not on PyPI, and pairing one colour stream with one depth stream needs only
this: the last ``capacity`` depth images are kept; a colour frame is paired with the one whose stamp
is nearest to its own, within ``tolerance_ns``, and with the newest CameraInfo (a camera's
intrinsics do not change from frame to frame); a pair needs both.

The colour, depth and CameraInfo of one instant arrive in any order. A colour frame whose depth or
first CameraInfo has not come yet waits (one frame at most) while a depth publisher exists, until
they come, a depth later than it by more than the tolerance comes (so its own will not), a newer
colour frame comes, or ``wait_s`` passes (``release_stale``, from a timer); then it goes on without
depth and is answered in 2D. Nothing here blocks: every event is a callback.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEPTH_BUFFER = 8  # depth images kept for matching


def header_ns(msg: Any) -> int:
    stamp = msg.header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


@dataclass
class SyncedFrame:
    """A colour frame and, when one matched, its depth image and the camera's CameraInfo."""

    image: Any          # sensor_msgs/Image or CompressedImage
    received_at: float  # clock reading when the colour frame arrived
    depth: Any = None   # sensor_msgs/Image (16UC1 or 32FC1), stamp within the tolerance
    info: Any = None    # sensor_msgs/CameraInfo, the newest received


@dataclass
class SyncStats:
    with_depth: int = 0
    without_depth: int = 0


class DepthSync:
    """Pairs colour frames with depth by stamp; ``emit`` receives each frame once, paired or not."""

    def __init__(self, emit: Callable[[SyncedFrame], None], tolerance_ns: int, *, capacity: int = DEPTH_BUFFER,
                 wait_s: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        if tolerance_ns < 0 or capacity < 1 or wait_s < 0:
            raise ValueError("tolerance_ns and wait_s must be >= 0 and capacity >= 1")
        self._emit = emit
        self._tolerance = int(tolerance_ns)
        self._wait_s = wait_s
        self._clock = clock
        self._lock = threading.Lock()
        self._depths: deque[tuple[int, Any]] = deque(maxlen=capacity)
        self._info: Any = None
        self._pending: tuple[Any, float] | None = None  # a colour frame waiting for its depth, and when it came
        self.stats = SyncStats()

    def on_info(self, msg: Any) -> None:
        ready: list[SyncedFrame] = []
        with self._lock:
            self._info = msg
            self._complete_pending(ready)
        self._send(ready)

    def on_depth(self, msg: Any) -> None:
        stamp = header_ns(msg)
        ready: list[SyncedFrame] = []
        with self._lock:
            self._depths.append((stamp, msg))
            self._complete_pending(ready)
            if self._pending is not None and self._depth_passed(header_ns(self._pending[0])):
                ready.append(self._alone(self._pending))  # depth went past it: its own will not come
                self._pending = None
        self._send(ready)

    def _complete_pending(self, ready: list[SyncedFrame]) -> None:
        """Pair the waiting colour frame if its depth and a CameraInfo are both here now."""
        if self._pending is None or self._info is None:
            return
        depth = self._match(header_ns(self._pending[0]))
        if depth is not None:
            ready.append(self._pair(self._pending, depth))
            self._pending = None

    def on_colour(self, msg: Any, depth_expected: bool) -> None:
        """A colour frame; with ``depth_expected`` (a depth publisher exists) it may wait for its depth."""
        ready: list[SyncedFrame] = []
        arrived = (msg, self._clock())
        with self._lock:
            if self._pending is not None:  # superseded before its depth came
                ready.append(self._alone(self._pending))
                self._pending = None
            depth = self._match(header_ns(msg))
            if depth is not None and self._info is not None:
                ready.append(self._pair(arrived, depth))
            elif depth_expected and not self._depth_passed(header_ns(msg)):
                self._pending = arrived
            else:
                ready.append(self._alone(arrived))
        self._send(ready)

    def release_stale(self) -> None:
        """Send on without depth a colour frame that has waited longer than ``wait_s``."""
        ready: list[SyncedFrame] = []
        with self._lock:
            if self._pending is not None and self._clock() - self._pending[1] >= self._wait_s:
                ready.append(self._alone(self._pending))
                self._pending = None
        self._send(ready)

    def _match(self, stamp: int) -> Any:
        best = min(self._depths, key=lambda item: abs(item[0] - stamp), default=None)
        return best[1] if best is not None and abs(best[0] - stamp) <= self._tolerance else None

    def _depth_passed(self, stamp: int) -> bool:
        return bool(self._depths) and self._depths[-1][0] > stamp + self._tolerance

    def _pair(self, arrived: tuple[Any, float], depth: Any) -> SyncedFrame:
        self.stats.with_depth += 1
        return SyncedFrame(*arrived, depth, self._info)

    def _alone(self, arrived: tuple[Any, float]) -> SyncedFrame:
        self.stats.without_depth += 1
        return SyncedFrame(*arrived)

    def _send(self, frames: list[SyncedFrame]) -> None:
        for frame in frames:  # outside the lock: emit hands the frame to the worker
            self._emit(frame)
