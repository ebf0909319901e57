"""The depth-1 latest-frame worker: no backlog, newest frame processed, errors survive.

Each test waits for the event it depends on (the worker has taken an item, an error was reported),
never for a stretch of time, so a slow machine cannot change the outcome.
"""

from __future__ import annotations

import threading

from find_ros.nodes.latest_frame import LatestFrameWorker


def _blocking_worker(depth: int = 1) -> tuple[LatestFrameWorker, list[int], threading.Event, threading.Event]:
    """A worker whose first item blocks until ``release``; ``taken`` is set once it is being processed."""
    processed: list[int] = []
    taken, release = threading.Event(), threading.Event()

    def process(item: int, waited_s: float) -> None:
        taken.set()
        assert release.wait(30)
        processed.append(item)

    return LatestFrameWorker(process, on_error=lambda i, e: None, depth=depth), processed, taken, release


def _wait_for(condition, timeout_s: float = 30.0) -> None:
    done = threading.Event()
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        done.wait(0.01)
    raise AssertionError("condition not reached")


def test_slow_worker_processes_the_newest_frame_and_counts_the_dropped_ones() -> None:
    worker, processed, taken, release = _blocking_worker()
    worker.put(0)
    assert taken.wait(30)  # the worker holds item 0 and is blocked
    for i in range(1, 11):  # arrive while the worker is busy: only the newest may survive
        worker.put(i)
    release.set()
    _wait_for(lambda: len(processed) == 2)
    worker.stop()
    assert processed == [0, 10]
    assert worker.stats.received == 11 and worker.stats.dropped == 9 and worker.stats.processed == 2


def test_an_exception_is_reported_and_the_worker_keeps_serving() -> None:
    errors: list[tuple[int, str]] = []
    reported, done = threading.Event(), threading.Event()

    def process(item: int, waited_s: float) -> None:
        if item == 1:
            raise ValueError("bad frame")
        done.set()

    def on_error(item: int, error: BaseException) -> None:
        errors.append((item, str(error)))
        reported.set()

    worker = LatestFrameWorker(process, on_error=on_error)
    worker.put(1)
    assert reported.wait(30)  # item 1 failed before item 2 is offered, so it cannot be replaced
    worker.put(2)
    assert done.wait(30)
    worker.stop()
    assert errors == [(1, "bad frame")]
    assert worker.stats.failed == 1 and worker.stats.processed == 1


def test_deeper_worker_keeps_the_newest_items_in_order() -> None:
    worker, processed, taken, release = _blocking_worker(depth=3)
    worker.put(0)
    assert taken.wait(30)
    for i in range(1, 8):
        worker.put(i)
    release.set()
    _wait_for(lambda: len(processed) == 4)
    worker.stop()
    assert processed == [0, 5, 6, 7]
    assert worker.stats.dropped == 4
