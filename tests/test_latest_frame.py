"""The depth-1 latest-frame worker: no backlog, newest frame processed, errors survive."""

from __future__ import annotations

import threading
import time

from find_ros.nodes.latest_frame import LatestFrameWorker


def test_slow_worker_processes_the_newest_frame_and_counts_the_dropped_ones() -> None:
    processed: list[int] = []
    release = threading.Event()

    def process(item: int, waited_s: float) -> None:
        release.wait(5)
        processed.append(item)

    worker = LatestFrameWorker(process, on_error=lambda i, e: None)
    worker.put(0)  # taken at once; blocks on `release`
    time.sleep(0.1)
    for i in range(1, 11):  # arrive while the worker is busy: only the newest may survive
        worker.put(i)
    release.set()
    deadline = time.monotonic() + 5
    while len(processed) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    assert processed == [0, 10]
    assert worker.stats.received == 11 and worker.stats.dropped == 9 and worker.stats.processed == 2


def test_an_exception_is_reported_and_the_worker_keeps_serving() -> None:
    errors: list[tuple[int, str]] = []
    done = threading.Event()

    def process(item: int, waited_s: float) -> None:
        if item == 1:
            raise ValueError("bad frame")
        done.set()

    worker = LatestFrameWorker(process, on_error=lambda i, e: errors.append((i, str(e))))
    worker.put(1)
    time.sleep(0.1)
    worker.put(2)
    assert done.wait(5)
    worker.stop()
    assert errors == [(1, "bad frame")]
    assert worker.stats.failed == 1 and worker.stats.processed == 1


def test_deeper_worker_keeps_the_newest_items_in_order() -> None:
    processed: list[int] = []
    release = threading.Event()

    def process(item: int, waited_s: float) -> None:
        release.wait(5)
        processed.append(item)

    worker = LatestFrameWorker(process, on_error=lambda i, e: None, depth=3)
    worker.put(0)
    time.sleep(0.1)
    for i in range(1, 8):
        worker.put(i)
    release.set()
    deadline = time.monotonic() + 5
    while len(processed) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    assert processed == [0, 5, 6, 7]
    assert worker.stats.dropped == 4
