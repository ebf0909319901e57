"""Captions from a language model behind an OpenAI-compatible chat-completions endpoint.

Per image: one prompt (:mod:`training.data_engine.prompt`); the answer must pass
:func:`training.data_engine.markup.parse_response` as a whole. A rejected answer is recorded with its
reason and the model is asked again, told why, at most ``max_generations`` times; after that the
image is recorded as rejected and never written half-valid. Transport failures (timeouts, 429s,
5xx) are retried inside :class:`ChatClient` and, when exhausted, propagate so the image stays
pending for the next run instead of being recorded as done.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .backend import CaptionResult, Reject
from .chat_client import ChatClient
from .inputs import ImageItem
from .markup import MarkupError, parse_response
from .prompt import PROMPT_VERSION, build_messages, feedback_message

_RESPONSE_EXCERPT = 300
# Answer budget: a caption is ~40-80 tokens; generous so an answer is never cut mid-caption (a cut
# answer fails validation and costs a whole retry). ChatClient(max_tokens=...) overrides it.
_TOKENS_PER_CAPTION = 200


class ChatBackend:
    name = "chat"
    uses_llm = True

    def __init__(self, client: ChatClient, *, max_generations: int = 3, max_segments: int = 30) -> None:
        if max_generations < 1:
            raise ValueError("max_generations must be >= 1")
        self.client = client
        self.max_generations = max_generations
        self.max_segments = max_segments

    def fingerprint(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "base_url": self.client.base_url,
            "model": self.client.model,
            "temperature": self.client.temperature,
            "prompt_version": PROMPT_VERSION,
            "max_segments": self.max_segments,
        }

    def generate(self, item: ImageItem, n_captions: int) -> CaptionResult:
        valid_ids = {s.id for s in item.entity_segments}
        if not valid_ids:
            return CaptionResult(captions=[])
        messages = build_messages(item, n_captions, self.max_segments)
        budget = self.client.max_tokens or 100 + _TOKENS_PER_CAPTION * n_captions
        rejects: list[Reject] = []
        calls = 0
        causes: Counter = Counter()
        for attempt in range(1, self.max_generations + 1):
            completion = self.client.complete(messages, budget)
            calls += completion.attempts
            causes.update(completion.retry_causes)
            try:
                captions = parse_response(completion.text, n_captions, valid_ids)
            except MarkupError as e:
                rejects.append(Reject(attempt, e.reason, e.detail, completion.text[:_RESPONSE_EXCERPT]))
                messages = [*messages, {"role": "assistant", "content": completion.text}, feedback_message(str(e))]
                continue
            return CaptionResult(captions, rejects, calls, dict(sorted(causes.items())))
        return CaptionResult([], rejects, calls, dict(sorted(causes.items())))
