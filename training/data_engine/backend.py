"""The one interface every caption backend implements, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .inputs import ImageItem
from .markup import Caption


@dataclass(frozen=True)
class Reject:
    """A rejected answer: which attempt, why (a stable reason code), and the start of what was said."""

    attempt: int
    reason: str
    detail: str
    response: str  # truncated; the answer text only, never request headers

    def as_dict(self) -> dict[str, Any]:
        return {"attempt": self.attempt, "reason": self.reason, "detail": self.detail, "response": self.response}


@dataclass
class CaptionResult:
    """Validated captions for one image (empty when every attempt was rejected)."""

    captions: list[Caption]
    rejects: list[Reject] = field(default_factory=list)
    llm_calls: int = 0  # HTTP requests made, retries included
    retry_causes: dict[str, int] = field(default_factory=dict)  # transport retries, e.g. {"http_429": 1}

    @property
    def ok(self) -> bool:
        return bool(self.captions)


@runtime_checkable
class CaptionBackend(Protocol):
    """Turns one image's annotations into entity-linked captions.

    ``generate`` must return only captions produced by :func:`training.data_engine.markup.parse_caption`
    (or ``parse_response``) against the image's segment ids; it may be called from several threads.
    """

    name: str
    uses_llm: bool

    def fingerprint(self) -> dict[str, Any]:
        """Settings that change the output (never secrets): binds a work directory to this backend."""
        ...

    def generate(self, item: ImageItem, n_captions: int) -> CaptionResult: ...
