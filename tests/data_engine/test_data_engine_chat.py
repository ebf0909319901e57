"""The chat backend against a local chat-completions server: bad answers, timeouts, 429s, secrets."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from de_chat_server import Reply, good_answer, proposal_ids
from training.data_engine import ChatBackend, ChatClient, EngineConfig, RetryPolicy, load_find_bench, run_engine
from training.data_engine.chat_client import ChatFatalError, parse_retry_after
from training.data_engine.embedders import ColorShapeEmbedder
from training.data_engine.engine import IncompleteRun
from training.data_engine.inputs import load_dataset

SECRET = "sk-test-9f8e7d6c5b4a-SECRET"


def _backend(server, monkeypatch, *, timeout=5.0, attempts=4, generations=3) -> ChatBackend:
    monkeypatch.setenv("DE_TEST_KEY", SECRET)
    client = ChatClient(server.base_url, "test-model", api_key_env="DE_TEST_KEY", timeout=timeout,
                        policy=RetryPolicy(max_attempts=attempts, base_delay=0.01, max_delay=0.05))
    return ChatBackend(client, max_generations=generations)


def _cfg(toy, out: Path, **kw) -> EngineConfig:
    return EngineConfig(toy.panoptic_json, toy.images_dir, out, panoptic_dir=toy.panoptic_dir,
                        captions_json=toy.captions_json, descriptions_json=toy.descriptions_json,
                        progress=False, concurrency=3, **kw)


def _keys(toy) -> list[int]:
    """The server's key of each image: its largest segment id (first in the prompt's proposal)."""
    ds = load_dataset(toy.panoptic_json, toy.images_dir, panoptic_dir=toy.panoptic_dir)
    return [sorted(im.entity_segments, key=lambda s: (-s.area, s.id))[0].id for im in ds.images]


def _bad_answers(prompt: str) -> list[str]:
    a, b = proposal_ids(prompt)[:2]
    return [
        f"[{a}]<A thing> stands next to [424242]<a ghost>.",  # id not in this image
        f"[{a}]<A thing next to [{b}]<another thing>>.",  # nested / overlapping spans
        "A thing stands next to another thing.",  # no markup at all
        f"Here is your caption: [{a}]<A thing> [oops.",  # leftover bracket
    ]


def test_malformed_answers_are_retried_and_recorded(toy, tmp_path, chat_server, monkeypatch):
    def script(key, nth, body):
        if nth == 0:
            bad = _bad_answers(body["messages"][1]["content"])
            return Reply(content=bad[key % len(bad)])
        return Reply()  # a good answer on the second try

    server = chat_server(script)
    out = tmp_path / "bench.json"
    summary = run_engine(_cfg(toy, out, references=True), _backend(server, monkeypatch), ColorShapeEmbedder())

    bench = load_find_bench(out)  # valid, strictly checked
    assert len(bench.images) == 6 and len(bench.annotations) == 6
    for key in _keys(toy):
        reqs = server.requests_for(key)
        assert len(reqs) == 2  # one rejected answer, one retry
        assert reqs[0].body["model"] == "test-model" and reqs[0].body["max_tokens"] == 300
        retry_msgs = reqs[1].body["messages"]
        assert [m["role"] for m in retry_msgs] == ["system", "user", "assistant", "user"]
        assert "rejected" in retry_msgs[3]["content"]  # the model is told why
    rejects = [json.loads(ln) for ln in summary.rejects_file.read_text().splitlines()]
    assert len(rejects) == 6
    assert {r["reason"] for r in rejects} <= {"unknown_id", "nested_or_overlapping", "no_entities", "malformed_id",
                                              "stray_bracket"}
    assert {"unknown_id", "no_entities"} <= {r["reason"] for r in rejects}
    stats = json.loads(summary.stats_file.read_text())
    assert stats["llm_calls"] == 12 and stats["rejected_answers"] == 6 and stats["images_rejected"] == 0


def test_always_bad_answers_reject_the_image_and_write_nothing_of_it(toy, tmp_path, chat_server, monkeypatch):
    keys = _keys(toy)
    hopeless = keys[2]

    def script(key, nth, body):
        if key == hopeless:
            return Reply(content=_bad_answers(body["messages"][1]["content"])[0])
        return Reply()

    server = chat_server(script)
    out = tmp_path / "bench.json"
    summary = run_engine(_cfg(toy, out), _backend(server, monkeypatch, generations=3), None)
    bench = load_find_bench(out)
    ds = load_dataset(toy.panoptic_json, toy.images_dir, panoptic_dir=toy.panoptic_dir)
    rejected_image = ds.images[2].image_id
    assert rejected_image not in bench.images and len(bench.images) == 5
    assert len(server.requests_for(hopeless)) == 3  # bounded: max_generations answers, then give up
    assert summary.stats["images_rejected"] == 1 and summary.stats["reject_reasons"] == {"unknown_id": 3}


def test_timeouts_and_429_are_retried_with_retry_after_honoured(toy, tmp_path, chat_server, monkeypatch):
    keys = _keys(toy)
    slow, limited = keys[0], keys[1]

    def script(key, nth, body):
        if key == slow and nth == 0:
            return Reply(delay=3.0)  # longer than the client's 1 s timeout
        if key == limited and nth == 0:
            return Reply(status=429, headers={"Retry-After": "1"})
        if key == keys[3] and nth == 0:
            return Reply(status=503)
        if key == keys[4] and nth == 0:
            return Reply(raw_body=b"{not json")
        return Reply()

    server = chat_server(script)
    out = tmp_path / "bench.json"
    summary = run_engine(_cfg(toy, out), _backend(server, monkeypatch, timeout=1.0), None)
    assert len(load_find_bench(out).annotations) == 6

    assert len(server.requests_for(slow)) == 2
    first, second = server.requests_for(limited)
    assert second.t - first.t >= 0.95  # waited for Retry-After: 1
    assert len(server.requests_for(keys[3])) == 2 and len(server.requests_for(keys[4])) == 2
    assert summary.stats["transport_retries"] == {"bad_body": 1, "http_429": 1, "http_503": 1, "timeout": 1}
    assert summary.stats["llm_calls"] == 10


def test_exhausted_retries_leave_images_pending_and_a_rerun_finishes(toy, tmp_path, chat_server, monkeypatch):
    keys = _keys(toy)
    down = {"on": True}

    def script(key, nth, body):
        if key == keys[5] and down["on"]:
            return Reply(status=500)
        return Reply()

    server = chat_server(script)
    out = tmp_path / "bench.json"
    with pytest.raises(IncompleteRun) as e:
        run_engine(_cfg(toy, out), _backend(server, monkeypatch, attempts=3), None)
    assert "1 image(s)" in str(e.value) and "re-run" in str(e.value)
    assert not out.exists()  # never a partial dataset
    assert len(server.requests_for(keys[5])) == 3  # bounded attempts

    down["on"] = False
    n_before = len(server.seen)
    run_engine(_cfg(toy, out), _backend(server, monkeypatch, attempts=3), None)
    assert len(server.seen) - n_before == 1  # only the pending image is asked again
    assert len(load_find_bench(out).annotations) == 6


def test_auth_failure_stops_the_run(toy, tmp_path, chat_server, monkeypatch):
    server = chat_server(lambda key, nth, body: Reply(status=401))
    with pytest.raises(ChatFatalError) as e:
        run_engine(_cfg(toy, tmp_path / "bench.json"), _backend(server, monkeypatch), None)
    assert "401" in str(e.value)
    assert len(server.seen) <= 6  # no retries against a refused key, no new work after the first refusal


def test_api_key_is_sent_but_never_logged_or_written(toy, tmp_path, chat_server, monkeypatch, caplog, capsys):
    def script(key, nth, body):
        if nth == 0:  # an error body echoing the key must not leak it either
            return Reply(status=503, raw_body=f'{{"error": "bad key {SECRET}"}}'.encode())
        return Reply()

    server = chat_server(script)
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "bench.json"
    backend = _backend(server, monkeypatch)
    summary = run_engine(_cfg(toy, out, references=True), backend, ColorShapeEmbedder())
    assert all(s.authorization == f"Bearer {SECRET}" for s in server.seen)
    assert SECRET not in repr(backend.client) and SECRET not in json.dumps(backend.fingerprint())
    captured = capsys.readouterr()
    texts = [caplog.text, captured.out, captured.err]
    files = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) >= 5  # outputs, work files, inputs
    assert any("retrying" in t for t in texts)  # the retries were logged ...
    assert all(SECRET not in t for t in texts)  # ... without the key
    assert all(SECRET.encode() not in b for b in files)
    assert summary.stats["transport_retries"] == {"http_503": 6}


def test_missing_key_variable_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("DE_TEST_NO_SUCH_KEY", raising=False)
    with pytest.raises(Exception) as e:
        ChatClient("http://127.0.0.1:9/v1", "m", api_key_env="DE_TEST_NO_SUCH_KEY")
    assert "DE_TEST_NO_SUCH_KEY" in str(e.value) and "not set" in str(e.value)


def test_retry_after_formats():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0 - 10) == pytest.approx(10.0)
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_good_answer_helper_is_valid_markup():
    from training.data_engine.markup import parse_response

    prompt = "Write 2 caption(s)\nSegment proposal (ids the captions should mention): <[11, 22, 33]>"
    assert len(parse_response(good_answer(prompt), 2, {11, 22, 33})) == 2
