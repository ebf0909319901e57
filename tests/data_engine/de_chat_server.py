"""A local OpenAI-compatible chat-completions server for the data-engine tests.

It listens on 127.0.0.1 (port chosen by the OS). Each request is answered by a *script*
``(key, nth, request) -> Reply`` where ``key`` identifies the image (its first proposed segment id)
and ``nth`` counts that image's earlier requests, so a test can make the first answer bad and the
second good, sleep past the client's timeout, or send a 429. Handlers sleep at most ``MAX_SLEEP``
seconds, and the server shuts itself down after ``LIFETIME`` seconds even if a test forgets to.
(A uniquely named module, not conftest: several test directories have a conftest.py.)
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_SLEEP = 5.0
LIFETIME = 120.0


@dataclass
class Reply:
    status: int = 200
    content: str | None = None  # None: a valid answer composed from the prompt
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw_body: bytes | None = None  # sent as is (for broken bodies)


@dataclass
class Seen:
    t: float
    key: int
    nth: int
    authorization: str | None
    body: dict


def proposal_ids(prompt: str) -> list[int]:
    m = re.search(r"Segment proposal \(ids the captions should mention\): <\[([\d, ]*)\]>", prompt)
    assert m, "prompt without a segment proposal"
    return [int(x) for x in m.group(1).split(",") if x.strip()]


def requested_captions(prompt: str) -> int:
    m = re.search(r"Write (\d+) caption", prompt)
    assert m
    return int(m.group(1))


def good_answer(prompt: str) -> str:
    """A valid answer for the prompt: deterministic, so resumed and uninterrupted runs agree."""
    ids = proposal_ids(prompt)
    lines = []
    for k in range(requested_captions(prompt)):
        a = ids[k % len(ids)]
        if len(ids) > 1:
            b = ids[(k + 1) % len(ids)]
            lines.append(f"[{a}]<A thing> stands next to [{b}]<another thing>.")
        else:
            lines.append(f"[{a}]<A thing> fills the picture.")
    return "\n".join(lines)


class ChatServer:
    def __init__(self, script: Callable[[int, int, dict], Reply]) -> None:
        self.script = script
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._counts: dict[int, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                assert self.path == "/v1/chat/completions", self.path
                prompt = body["messages"][1]["content"]
                key = proposal_ids(prompt)[0]
                with server._lock:
                    nth = server._counts.get(key, 0)
                    server._counts[key] = nth + 1
                    server.seen.append(Seen(time.monotonic(), key, nth, self.headers.get("Authorization"), body))
                reply = server.script(key, nth, body)
                time.sleep(min(reply.delay, MAX_SLEEP))
                if reply.raw_body is not None:
                    data = reply.raw_body
                elif reply.status == 200:
                    content = reply.content if reply.content is not None else good_answer(prompt)
                    data = json.dumps({
                        "id": f"cmpl-{key}-{nth}", "object": "chat.completion", "model": body["model"],
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": content}}],
                    }).encode()
                else:
                    data = json.dumps({"error": {"message": "scripted error", "code": reply.status}}).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._watchdog = threading.Timer(LIFETIME, self.httpd.shutdown)
        self._watchdog.daemon = True

    def __enter__(self) -> ChatServer:
        self._thread.start()
        self._watchdog.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._watchdog.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def requests_for(self, key: int) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.key == key]
