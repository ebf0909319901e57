"""The last frames a node processed, kept as their exact pixels so that an instruction naming a
region of one of them (a frame-region entity) can be cut from it.

Kept raw rather than compressed: encoding every processed frame cost the worker about 5 ms at
640x480 (a JPEG per frame, most never looked at), and a raw crop is the pixels the camera sent,
not a lossy copy. Bounded twice: by count and by the bytes all kept frames hold, so a camera of
large frames keeps fewer of them rather than more memory.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np


class RecentFrames:
    """Frames by stamp (ns), newest last; at most ``max_frames`` and ``max_bytes`` together."""

    def __init__(self, max_frames: int, max_bytes: int) -> None:
        self.max_frames = max(0, int(max_frames))
        self.max_bytes = max(0, int(max_bytes))
        self._frames: deque[tuple[int, np.ndarray]] = deque()
        self._bytes = 0
        self._lock = threading.Lock()  # added on the worker, read by instruction callbacks

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def add(self, stamp_ns: int, rgb: np.ndarray) -> None:
        """Keep ``rgb`` (not copied: the node never writes to a decoded frame) under ``stamp_ns``,
        dropping the oldest frames beyond either bound. A frame larger than the byte bound alone
        is not kept."""
        if not self.max_frames or rgb.nbytes > self.max_bytes:
            return
        with self._lock:
            self._frames.append((int(stamp_ns), rgb))
            self._bytes += rgb.nbytes
            while len(self._frames) > self.max_frames or self._bytes > self.max_bytes:
                self._bytes -= self._frames.popleft()[1].nbytes

    def nearest(self, stamp_ns: int, tolerance_ns: int) -> np.ndarray | None:
        """A copy of the kept frame closest to ``stamp_ns``, or None when none is within ``tolerance_ns``."""
        with self._lock:
            best = min(self._frames, key=lambda item: abs(item[0] - stamp_ns), default=None)
        if best is None or abs(best[0] - stamp_ns) > tolerance_ns:
            return None
        return best[1].copy()

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
            self._bytes = 0
