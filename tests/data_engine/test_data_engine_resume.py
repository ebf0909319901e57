"""Kill -9 mid-run and restart: same bytes as an uninterrupted run, no image lost or done twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from de_chat_server import Reply
from training.data_engine import load_find_bench
from training.data_engine.toy import write_toy_dataset

REPO = Path(__file__).resolve().parents[2]
N_IMAGES = 14
CONCURRENCY = 2


def _cmd(toy, out: Path, base_url: str) -> list[str]:
    return [
        sys.executable, "-m", "training.data_engine",
        "--coco-panoptic", str(toy.panoptic_json), "--images", str(toy.images_dir),
        "--panoptic-dir", str(toy.panoptic_dir), "--captions", str(toy.captions_json),
        "--descriptions", str(toy.descriptions_json), "--out", str(out),
        "--backend", "chat", "--base-url", base_url, "--model", "test-model",
        "--concurrency", str(CONCURRENCY), "--captions-per-image", "2",
        "--references", "--embedder", "color", "--no-progress",
    ]


def _records(path: Path) -> int:
    try:
        return max(0, path.read_bytes().count(b"\n") - 1)  # minus the header
    except FileNotFoundError:
        return 0


def test_sigkill_and_restart_gives_identical_output(tmp_path, chat_server):
    toy = write_toy_dataset(tmp_path / "toy", n_images=N_IMAGES, seed=5)
    # While a run is to be killed, the server answers only `allowed` more requests and holds the rest
    # until the kill, so the run is always caught mid-way however fast or slow this machine is.
    gate = threading.Event()
    allowed: list[int | None] = [None]
    lock = threading.Lock()

    def script(key, nth, body):
        with lock:
            hold = allowed[0] is not None and allowed[0] <= 0
            if allowed[0] is not None and not hold:
                allowed[0] -= 1
        if hold:
            gate.wait(60)
        # Uneven delays make completion order differ from input order, which the output must not reflect.
        return Reply(delay=0.05 + 0.07 * (key % 3))

    server = chat_server(script)
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    reference = tmp_path / "reference" / "bench.json"
    done = subprocess.run(_cmd(toy, reference, server.base_url), cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(server.seen) == N_IMAGES

    out = tmp_path / "killed" / "bench.json"
    work = out.with_name(out.name + ".work") / "captions.jsonl"
    asked_before = len(server.seen)
    kills = 0
    for threshold in (3, 8):
        with lock:
            allowed[0] = threshold - _records(work)  # one good answer is one record
        gate.clear()
        with open(tmp_path / f"stderr{threshold}.log", "wb") as err:
            proc = subprocess.Popen(_cmd(toy, out, server.base_url), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                    stderr=err)
            deadline = time.monotonic() + 60  # a failure guard only
            while _records(work) < threshold and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            assert proc.poll() is None, "the run finished before it could be killed"
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            kills += 1
        with lock:
            allowed[0] = None
        gate.set()  # held requests return to a closed connection
        assert not out.exists()  # a killed run never leaves a partial dataset
        assert _records(work) == threshold

    final = subprocess.run(_cmd(toy, out, server.base_url), cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=120)
    assert final.returncode == 0, final.stderr
    assert out.read_bytes() == reference.read_bytes()
    assert load_find_bench(out).annotations

    keys = [json.loads(line)["key"] for line in work.read_bytes().splitlines()[1:]]
    assert len(keys) == len(set(keys)) == N_IMAGES  # nothing lost, nothing twice
    # Only requests in flight at a kill are repeated: at most 2 * concurrency per kill.
    assert len(server.seen) - asked_before <= N_IMAGES + kills * 2 * CONCURRENCY
