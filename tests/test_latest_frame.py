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


def test_keyed_slots_take_turns_so_a_fast_source_never_starves_a_slow_one() -> None:
    worker, processed, taken, release = _blocking_worker()
    worker.put(0, key="fast")
    assert taken.wait(30)  # busy with fast's first frame
    for i in range(1, 6):
        worker.put(i, key="fast")  # fast floods its slot: only its newest survives
    worker.put(100, key="slow")
    worker.put(101, key="third")
    release.set()
    _wait_for(lambda: len(processed) == 4)
    worker.stop()
    # after fast's frame in progress, every other source with a frame waiting gets its turn in the
    # order it arrived, then fast's newest
    assert processed == [0, 5, 100, 101] or processed == [0, 100, 101, 5]
    assert processed.index(100) < processed.index(101)
    assert worker.key_stats["fast"].received == 6 and worker.key_stats["fast"].dropped == 4
    assert worker.key_stats["fast"].processed == 2 and worker.key_stats["slow"].processed == 1
    assert worker.stats.processed == 4 and worker.stats.received == 8


def test_round_robin_serves_keys_in_turn_with_deeper_slots() -> None:
    worker, processed, taken, release = _blocking_worker(depth=4)
    worker.put("a0", key="a")
    assert taken.wait(30)
    for i in range(1, 4):
        worker.put(f"a{i}", key="a")
    for i in range(3):
        worker.put(f"b{i}", key="b")
    release.set()
    _wait_for(lambda: len(processed) == 7)
    worker.stop()
    assert processed == ["a0", "a1", "b0", "a2", "b1", "a3", "b2"]
