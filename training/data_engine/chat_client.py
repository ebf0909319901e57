"""A small client for OpenAI-compatible ``POST {base_url}/chat/completions`` (standard library only).

Robustness, all bounded:

* every request has a socket timeout (connect and each read);
* at most ``max_attempts`` HTTP requests per completion; timeouts, connection errors, 408/409/5xx
  and 200s with an unusable body are retried with exponential backoff and jitter
  (``d = min(max_delay, base_delay * 2**(attempt-1))``, sleep uniform in ``[d/2, d]``);
* 429 honours ``Retry-After`` (seconds or an HTTP date; capped at ``max_retry_after``) and pauses
  every thread of this client until then, since the limit is per key rather than per request;
* other 4xx (bad key, unknown model, bad URL) are not retried: they raise :class:`ChatFatalError`,
  and the engine stops instead of burning the whole dataset against a misconfiguration.

The API key is read once from an environment variable whose *name* is configurable. It is sent in
the ``Authorization`` header and nowhere else: not in ``repr``, logs, exceptions or files; text that
comes back from the server is scrubbed of it before it is logged or raised.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import DataEngineError

log = logging.getLogger(__name__)

MAX_BODY = 4 << 20  # bytes read from one answer: a caption answer is a few KB; never buffer a runaway body


class ChatError(DataEngineError):
    """A completion that could not be obtained."""


class ChatTransientError(ChatError):
    """Retries exhausted on timeouts / rate limits / server errors; the same request may work later."""


class ChatFatalError(ChatError):
    """A request the server will never accept as configured (401, 403, 404, 400 ...)."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays must be >= 0")


@dataclass
class Completion:
    text: str
    attempts: int  # HTTP requests made for this completion
    retry_causes: Counter = field(default_factory=Counter)  # e.g. {"timeout": 1, "http_429": 2}


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class ChatClient:
    """Thread-safe client for one OpenAI-compatible endpoint and model."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        timeout: float = 60.0,
        policy: RetryPolicy | None = None,
        temperature: float = 0.2,
        max_tokens: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        require_key: bool = True,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise DataEngineError(f"--base-url must start with http:// or https://, got {base_url!r}")
        if timeout <= 0:
            raise DataEngineError("--timeout must be > 0")
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self.model = model
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.api_key_env = api_key_env
        self._sleep = sleep
        self.__key: str | None = None
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key and require_key:
                raise DataEngineError(f"environment variable {api_key_env} (--api-key-env) is not set or empty")
            self.__key = key or None
        self._gate = threading.Lock()
        self._not_before = 0.0  # monotonic time before which no request may start (after a 429)

    def __repr__(self) -> str:  # the key stays out of every representation
        return f"ChatClient(url={self.url!r}, model={self.model!r}, key_from={self.api_key_env!r})"

    def _scrub(self, text: str) -> str:
        return text.replace(self.__key, "***") if self.__key else text

    def _headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.__key:
            h["Authorization"] = f"Bearer {self.__key}"
        return h

    def _wait_gate(self) -> None:
        with self._gate:
            delay = self._not_before - time.monotonic()
        if delay > 0:
            self._sleep(delay)

    def _pause_all(self, seconds: float) -> None:
        with self._gate:
            self._not_before = max(self._not_before, time.monotonic() + seconds)

    def _backoff(self, attempt: int) -> float:
        d = min(self.policy.max_delay, self.policy.base_delay * 2 ** (attempt - 1))
        return random.uniform(d / 2, d)

    def _post(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.url, data=body, headers=self._headers(), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, dict(resp.headers.items()), resp.read(MAX_BODY + 1)
        except urllib.error.HTTPError as e:
            with e:
                return e.code, dict(e.headers.items()) if e.headers else {}, e.read(MAX_BODY + 1)

    @staticmethod
    def _content(payload: bytes) -> str:
        if len(payload) > MAX_BODY:
            raise ValueError(f"answer body larger than {MAX_BODY} bytes")
        doc = json.loads(payload)
        content = doc["choices"][0]["message"]["content"]
        if not isinstance(content, str):
            raise TypeError("message content is not a string")
        return content

    def complete(self, messages: list[dict[str, str]], max_tokens: int | None = None) -> Completion:
        """One chat completion's text, after at most ``policy.max_attempts`` requests."""
        payload: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": self.temperature}
        if max_tokens or self.max_tokens:
            payload["max_tokens"] = max_tokens or self.max_tokens
        body = json.dumps(payload).encode()
        causes: Counter = Counter()
        last = ""
        for attempt in range(1, self.policy.max_attempts + 1):
            self._wait_gate()
            delay: float | None
            try:
                status, headers, data = self._post(body)
            except (TimeoutError, socket.timeout):
                cause, delay, last = "timeout", self._backoff(attempt), f"no answer within {self.timeout:g} s"
            except (urllib.error.URLError, ConnectionError, http.client.HTTPException, OSError) as e:
                reason = getattr(e, "reason", e)
                if isinstance(reason, (TimeoutError, socket.timeout)):
                    cause, last = "timeout", f"no answer within {self.timeout:g} s"
                else:
                    cause, last = "connection", f"{type(e).__name__}: {self._scrub(str(reason))}"
                delay = self._backoff(attempt)
            else:
                if 200 <= status < 300:
                    try:
                        return Completion(self._content(data), attempt, causes)
                    except (ValueError, KeyError, IndexError, TypeError) as e:
                        cause, delay = "bad_body", self._backoff(attempt)
                        last = f"unusable 200 body ({type(e).__name__})"
                else:
                    text = self._scrub(data[:300].decode("utf-8", "replace"))
                    last = f"HTTP {status}: {text}"
                    retry_after = parse_retry_after(headers.get("Retry-After") or headers.get("retry-after"))
                    if status == 429:
                        cause = "http_429"
                        delay = min(retry_after, self.policy.max_retry_after) if retry_after is not None else None
                        if delay is None:
                            delay = self._backoff(attempt)
                        self._pause_all(delay)
                    elif status in (408, 409) or status >= 500:
                        cause = f"http_{status}"
                        delay = min(retry_after, self.policy.max_retry_after) if retry_after else self._backoff(attempt)
                    else:
                        raise ChatFatalError(f"{self.url} refused the request: {last}")
            causes[cause] += 1
            if attempt == self.policy.max_attempts:
                break
            log.warning("chat request failed (%s), attempt %d/%d, retrying in %.2f s",
                        last, attempt, self.policy.max_attempts, delay)
            if cause == "http_429":
                self._wait_gate()  # the shared pause, which also holds back the other threads
            else:
                self._sleep(delay)
        raise ChatTransientError(f"{self.url}: gave up after {self.policy.max_attempts} attempts; last: {last}")
