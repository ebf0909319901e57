"""Latest frame wins: a depth-1 slot between a subscription callback and one worker thread.

Camera callbacks only drop the newest frame into the slot and return. The worker takes whatever is
newest when it is free; a frame that is replaced before the worker reaches it is counted as dropped.
So slow inference never builds a queue and the lag never grows (a queue of 10 with slow inference is
the usual cause of seconds-old detections in ROS perception nodes).

The same worker with ``depth`` > 1 serves requests that must not be skipped but must stay bounded
(localization queries): the oldest waiting item is dropped once ``depth`` are waiting.

Several sources (cameras) share one worker, and so one model, through keyed slots: each key has its
own slot of ``depth`` items, and the worker takes from the keys in turn (round robin over the keys
with something waiting), so a fast camera can never starve a slow one: between two frames of one
camera, every other camera with a frame waiting gets one.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
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
        self._waiting: dict[Hashable, deque[tuple[T, float]]] = {}
        self._turn: deque[Hashable] = deque()  # keys with items waiting, next to serve first
        self._depth = depth
        self._running = True
        self.stats = SlotStats()
        self.key_stats: dict[Hashable, SlotStats] = {}  # the same counts per key
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def put(self, item: T, key: Hashable = None) -> None:
        """Offer the newest item of source ``key``; beyond ``depth`` waiting items of that key the
        oldest is dropped (and counted)."""
        with self._condition:
            per_key = self.key_stats.setdefault(key, SlotStats())
            waiting = self._waiting.setdefault(key, deque())
            for stats in (self.stats, per_key):
                stats.received += 1
            if not waiting:  # the key queues for a turn when its slot fills, not on every item
                self._turn.append(key)
            elif len(waiting) >= self._depth:
                waiting.popleft()
                for stats in (self.stats, per_key):
                    stats.dropped += 1
            waiting.append((item, time.monotonic()))
            self._condition.notify()

    def _loop(self) -> None:
        while True:
            with self._condition:
                while not self._turn and self._running:
                    self._condition.wait()
                if not self._running:
                    return
                key = self._turn.popleft()
                waiting = self._waiting[key]
                item, put_at = waiting.popleft()
                if waiting:  # more of this key: its next turn comes after every other key's
                    self._turn.append(key)
            counted = (self.stats, self.key_stats[key])
            try:
                self._process(item, time.monotonic() - put_at)
                for stats in counted:
                    stats.processed += 1
            except Exception as error:  # noqa: BLE001 - a bad frame must never stop the worker
                for stats in counted:
                    stats.failed += 1
                self._on_error(item, error)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop after the item in progress; a waiting item is discarded."""
        with self._condition:
            self._running = False
            self._waiting.clear()
            self._turn.clear()
            self._condition.notify()
        self._thread.join(timeout_s)
