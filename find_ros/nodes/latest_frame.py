"""Latest frame wins: a depth-1 slot between a subscription callback and one worker thread.

Camera callbacks only drop the newest frame into the slot and return. The worker takes whatever is
newest when it is free; a frame that is replaced before the worker reaches it is counted as dropped.
So slow inference never builds a queue and the lag never grows (a queue of 10 with slow inference is
the usual cause of seconds-old detections in ROS perception nodes).

The same worker with ``depth`` > 1 serves requests that must not be skipped but must stay bounded
(localization queries): the oldest waiting item is dropped once ``depth`` are waiting.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class SlotStats:
    received: int = 0
    processed: int = 0
    dropped: int = 0
    failed: int = 0


class LatestFrameWorker(Generic[T]):
    """Runs ``process(item, waited_s)`` on a thread for the newest item put since it was last free.

    ``on_error(item, exception)`` is called when ``process`` raises; the worker keeps serving.
    """

    def __init__(
        self,
        process: Callable[[T, float], None],
        on_error: Callable[[T, BaseException], None],
        name: str = "find_ros_worker",
        depth: int = 1,
    ) -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self._process = process
        self._on_error = on_error
        self._condition = threading.Condition()
        self._waiting: deque[tuple[T, float]] = deque()
        self._depth = depth
        self._running = True
        self.stats = SlotStats()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def put(self, item: T) -> None:
        """Offer the newest item; beyond ``depth`` waiting items the oldest is dropped (and counted)."""
        with self._condition:
            self.stats.received += 1
            if len(self._waiting) >= self._depth:
                self._waiting.popleft()
                self.stats.dropped += 1
            self._waiting.append((item, time.monotonic()))
            self._condition.notify()

    def _loop(self) -> None:
        while True:
            with self._condition:
                while not self._waiting and self._running:
                    self._condition.wait()
                if not self._running:
                    return
                item, put_at = self._waiting.popleft()
            try:
                self._process(item, time.monotonic() - put_at)
                self.stats.processed += 1
            except Exception as error:  # noqa: BLE001 - a bad frame must never stop the worker
                self.stats.failed += 1
                self._on_error(item, error)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop after the item in progress; a waiting item is discarded."""
        with self._condition:
            self._running = False
            self._waiting.clear()
            self._condition.notify()
        self._thread.join(timeout_s)
