"""Memoised frozen encoders for training.

The foundation models are frozen and deterministic, so re-running them on an image or a text seen
in an earlier epoch recomputes the same numbers. On a CPU they are most of a step's time; these
wrappers keep their outputs (bounded, least-recently-used) keyed by the exact input:

* vision: a digest of each preprocessed image tensor (after the model's own resize, normalisation
  and padding), so whatever ``FindModel.encode_image`` feeds the backbone is what is looked up;
* language: the text and the token limit; the batch is re-padded from per-text rows.

They sit where ``FindModel`` keeps its encoders and forward every other attribute, so the model's
own code paths run unchanged. A cached value never depends on what else shared its batch (images
are encoded one at a time, texts in batches of equal token count, i.e. without padding), so a
resumed run, whose cache starts cold, computes the same bits as the run it continues.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from find_ros.model.encoders import TextEncoding
from find_ros.model.text_budget import count_tokens


class _LRU:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Any) -> Any:
        if key in self.items:
            self.items.move_to_end(key)
            self.hits += 1
            return self.items[key][0]
        self.misses += 1
        return None

    def put(self, key: Any, value: Any, size: int) -> None:
        if size > self.max_bytes:
            return
        self.items[key] = (value, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, (_, s) = self.items.popitem(last=False)
            self.bytes -= s


def _nbytes(tensors: Sequence[Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


class _CachedEncoder(nn.Module):
    """A frozen encoder behind a byte-bounded LRU cache; every other attribute is the encoder's."""

    def __init__(self, encoder: nn.Module, max_bytes: int) -> None:
        super().__init__()
        self.inner = encoder
        self.cache = _LRU(max_bytes)
        self.store = True  # False: look up, but keep no new values (inputs that never come again)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.inner, name)


class CachedVisionEncoder(_CachedEncoder):

    @staticmethod
    def _key(pixels: Tensor) -> tuple:
        x = pixels.detach().contiguous().cpu()
        return (tuple(x.shape), str(x.dtype), hashlib.blake2b(x.numpy().tobytes(), digest_size=16).hexdigest())

    def forward(self, pixels: Tensor) -> list[Tensor]:
        keys = [self._key(p) for p in pixels]
        found = [self.cache.get(k) for k in keys]
        missing = [i for i, f in enumerate(found) if f is None]
        for i in missing:
            # One image at a time: a cached value must not depend on which other images shared its
            # batch (kernels may round differently per batch size), or resumed runs would drift.
            per = [m[0].clone() for m in self.inner(pixels[i : i + 1])]  # clone: leave inference mode
            if self.store:
                self.cache.put(keys[i], per, _nbytes(per))
            found[i] = per
        return [torch.stack([f[level] for f in found]) for level in range(len(found[0]))]


class CachedLanguageEncoder(_CachedEncoder):

    def forward(self, texts: Sequence[str], max_tokens: int) -> TextEncoding:
        texts = list(texts)
        found = [self.cache.get((t, max_tokens)) for t in texts]
        missing = [i for i, f in enumerate(found) if f is None]
        # Misses are encoded in batches of texts with the same token count: no padding, so each
        # row comes out bit-identical to the text encoded alone, whatever else is in the batch.
        limit = self.inner.token_limit(max_tokens)
        buckets: dict[int, list[int]] = {}
        for i in missing:
            buckets.setdefault(min(count_tokens(self.inner.tokenizer, texts[i]), limit), []).append(i)
        for _, members in sorted(buckets.items()):
            enc = self.inner([texts[i] for i in members], max_tokens)
            for j, i in enumerate(members):
                n = int(enc.attention_mask[j].sum())
                row = (enc.tokens[j, :n].clone(), enc.offsets[j, :n].clone())
                self.cache.put((texts[i], max_tokens), row, _nbytes(row))
                found[i] = row
        if not texts:
            return self.inner(texts, max_tokens)
        length = max(f[0].shape[0] for f in found)
        dim = found[0][0].shape[1]
        tokens = found[0][0].new_zeros(len(texts), length, dim)
        offsets = found[0][1].new_zeros(len(texts), length, 2)
        mask = torch.zeros(len(texts), length, dtype=torch.bool, device=tokens.device)
        for i, (t, o) in enumerate(found):
            tokens[i, : len(t)] = t
            offsets[i, : len(o)] = o
            mask[i, : len(t)] = True
        return TextEncoding(tokens=tokens, attention_mask=mask, offsets=offsets)


def enable_encoder_cache(model: nn.Module, vision_mb: float, language_mb: float) -> None:
    """Wrap ``model.vision_encoder`` / ``model.language_encoder`` in memoising caches (0 MB: leave as is)."""
    if vision_mb > 0 and not isinstance(model.vision_encoder, CachedVisionEncoder):
        model.vision_encoder = CachedVisionEncoder(model.vision_encoder, int(vision_mb * 2**20))
    if language_mb > 0 and not isinstance(model.language_encoder, CachedLanguageEncoder):
        model.language_encoder = CachedLanguageEncoder(model.language_encoder, int(language_mb * 2**20))


@contextmanager
def unstored(encoder: nn.Module) -> Iterator[None]:
    """Within the block, a cached ``encoder`` stores nothing new: for randomly cut crops, which
    would only push the training images out of the cache (any other encoder: no effect)."""
    if not isinstance(encoder, _CachedEncoder):
        yield
        return
    before, encoder.store = encoder.store, False
    try:
        yield
    finally:
        encoder.store = before


def cache_stats(model: nn.Module) -> dict[str, float]:
    out = {}
    for name in ("vision_encoder", "language_encoder"):
        enc = getattr(model, name)
        if isinstance(enc, (CachedVisionEncoder, CachedLanguageEncoder)):
            c = enc.cache
            out[f"{name}_hit_rate"] = c.hits / max(1, c.hits + c.misses)
            out[f"{name}_mb"] = c.bytes / 2**20
    return out
