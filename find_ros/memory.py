"""A bounded memory of embeddings for video localization and album search.

Each entry is one remembered image: a unit-norm embedding (FIND's image-level embedding), a stamp in
nanoseconds (camera frames) and/or a name (album files), and an optional payload: a compressed copy of
the frame, kept so the best match can be grounded again and so "this box in the frame at stamp t" can be
resolved. Embeddings live in a faiss inner-product index (exact search; cosine on unit vectors).

Bounded twice: at most ``capacity`` entries (the oldest is evicted first) and at most
``max_payload_bytes`` of payloads (the oldest payloads are dropped first; their embeddings stay
searchable). A keyframe policy keeps the memory from filling with near-identical frames: a frame is
kept when ``min_interval_s`` has passed since the last keyframe, or when the view changed (cosine to the
last keyframe below ``change_threshold``).

Saved as a directory: ``embeddings.safetensors`` (float32 embeddings, int64 stamps) and
``memory.json`` (names, settings); payloads are written as files in ``payloads/``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1


@dataclass(frozen=True)
class MemorySettings:
    dim: int
    capacity: int = 2000
    max_payload_bytes: int = 256 * 1024 * 1024
    min_interval_s: float = 1.0
    change_threshold: float = 0.95


@dataclass(frozen=True)
class Match:
    """One search result: the entry's id, stamp, name and cosine score (higher is better)."""

    entry_id: int
    stamp_ns: int
    name: str
    score: float


class EmbeddingMemory:
    """Bounded, searchable memory of image embeddings; see the module docstring."""

    def __init__(self, settings: MemorySettings) -> None:
        import faiss

        if settings.dim <= 0 or settings.capacity <= 0:
            raise ValueError(f"memory needs dim > 0 and capacity > 0, got {settings}")
        self.settings = settings
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(settings.dim))
        self._entries: OrderedDict[int, tuple[int, str, np.ndarray]] = OrderedDict()  # id -> (stamp, name, emb)
        self._payloads: OrderedDict[int, bytes] = OrderedDict()
        self._payload_bytes = 0
        self._next_id = 0
        self._last_keyframe: tuple[int, np.ndarray] | None = None

    # --- writing ------------------------------------------------------------------------------
    def consider(
        self,
        embedding: np.ndarray,
        *,
        stamp_ns: int,
        name: str = "",
        payload: bytes | Callable[[], bytes] | None = None,
    ) -> int | None:
        """Add the frame if the keyframe policy keeps it; returns its id, or None when skipped.

        ``payload`` may be a function, called only for frames that are kept (compressing every frame
        of a 30 Hz stream to keep one a second would be wasted work).
        """
        unit = self._unit(embedding)
        if self._last_keyframe is not None:
            last_stamp, last_embedding = self._last_keyframe
            waited = (stamp_ns - last_stamp) / 1e9 >= self.settings.min_interval_s
            changed = float(unit @ last_embedding) < self.settings.change_threshold
            if not (waited or changed):
                return None
        return self.add(unit, stamp_ns=stamp_ns, name=name, payload=payload() if callable(payload) else payload)

    def add(self, embedding: np.ndarray, *, stamp_ns: int = 0, name: str = "", payload: bytes | None = None) -> int:
        """Add one entry unconditionally, evicting the oldest entries beyond capacity."""
        unit = self._unit(embedding)
        entry_id = self._next_id
        self._next_id += 1
        self._index.add_with_ids(unit[None, :], np.array([entry_id], dtype=np.int64))
        self._entries[entry_id] = (int(stamp_ns), name, unit)
        self._last_keyframe = (int(stamp_ns), unit)
        if payload is not None:
            self._payloads[entry_id] = bytes(payload)
            self._payload_bytes += len(payload)
        while len(self._entries) > self.settings.capacity:
            self._evict(next(iter(self._entries)))
        while self._payload_bytes > self.settings.max_payload_bytes and self._payloads:
            dropped = self._payloads.popitem(last=False)[1]
            self._payload_bytes -= len(dropped)
        return entry_id

    def _evict(self, entry_id: int) -> None:
        self._index.remove_ids(np.array([entry_id], dtype=np.int64))
        del self._entries[entry_id]
        dropped = self._payloads.pop(entry_id, None)
        if dropped is not None:
            self._payload_bytes -= len(dropped)

    def _unit(self, embedding: np.ndarray) -> np.ndarray:
        vector = np.asarray(embedding, dtype=np.float32).reshape(-1)
        if vector.shape[0] != self.settings.dim:
            raise ValueError(f"embedding has {vector.shape[0]} values; this memory holds {self.settings.dim}-d vectors")
        norm = float(np.linalg.norm(vector))
        if not np.isfinite(norm) or norm == 0.0:
            raise ValueError("embedding is zero or not finite")
        return vector / norm

    # --- reading ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    @property
    def payload_bytes(self) -> int:
        return self._payload_bytes

    def search(self, query: np.ndarray, k: int = 5) -> list[Match]:
        """The ``k`` entries most similar to ``query`` (cosine), best first."""
        if not self._entries:
            return []
        k = max(1, min(int(k), len(self._entries)))
        scores, ids = self._index.search(self._unit(query)[None, :], k)
        return [
            Match(int(i), self._entries[int(i)][0], self._entries[int(i)][1], float(s))
            for s, i in zip(scores[0], ids[0])
            if i >= 0
        ]

    def payload(self, entry_id: int) -> bytes | None:
        return self._payloads.get(entry_id)

    def nearest_in_time(self, stamp_ns: int, tolerance_ns: int) -> int | None:
        """The id of the entry whose stamp is closest to ``stamp_ns`` within the tolerance."""
        best: tuple[int, int] | None = None
        for entry_id, (stamp, _, _) in self._entries.items():
            gap = abs(stamp - stamp_ns)
            if gap <= tolerance_ns and (best is None or gap < best[0]):
                best = (gap, entry_id)
        return None if best is None else best[1]

    def entry(self, entry_id: int) -> tuple[int, str, np.ndarray]:
        """(stamp_ns, name, unit embedding) of an entry; KeyError if it was evicted."""
        return self._entries[entry_id]

    # --- persistence --------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the memory to ``directory`` (created); files are replaced atomically."""
        from safetensors.numpy import save_file

        directory = Path(directory)
        (directory / "payloads").mkdir(parents=True, exist_ok=True)
        ids = list(self._entries)
        embeddings = np.stack([self._entries[i][2] for i in ids]) if ids else np.zeros((0, self.settings.dim), np.float32)
        stamps = np.array([self._entries[i][0] for i in ids], dtype=np.int64)
        _atomic(directory / "embeddings.safetensors", lambda p: save_file({"embeddings": embeddings, "stamps_ns": stamps}, p))
        for entry_id in ids:
            data = self._payloads.get(entry_id)
            if data is not None:
                _atomic(directory / "payloads" / f"{entry_id}.bin", lambda p, d=data: Path(p).write_bytes(d))
        meta = {
            "format_version": FORMAT_VERSION,
            "settings": asdict(self.settings),
            "ids": ids,
            "names": [self._entries[i][1] for i in ids],
            "payload_ids": [i for i in ids if i in self._payloads],
            "next_id": self._next_id,
        }
        _atomic(directory / "memory.json", lambda p: Path(p).write_text(json.dumps(meta, indent=1)))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> EmbeddingMemory:
        """Read a memory written by :meth:`save`; errors name the file and what was wrong."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        directory = Path(directory)
        meta_path = directory / "memory.json"
        try:
            meta = json.loads(meta_path.read_text())
            settings = MemorySettings(**meta["settings"])
            ids, names = meta["ids"], meta["names"]
        except FileNotFoundError:
            raise FileNotFoundError(f"no memory at {directory}: {meta_path.name} is missing") from None
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"{meta_path}: not a find_ros memory ({error})") from error
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{meta_path}: format version {meta.get('format_version')} is not {FORMAT_VERSION}")
        tensors_path = directory / "embeddings.safetensors"
        try:
            tensors = load_file(str(tensors_path))
        except (SafetensorError, OSError) as error:
            raise ValueError(f"{tensors_path}: unreadable ({error})") from error
        embeddings, stamps = tensors["embeddings"], tensors["stamps_ns"]
        if not (len(ids) == len(names) == embeddings.shape[0] == stamps.shape[0]):
            raise ValueError(f"{directory}: memory.json lists {len(ids)} entries, embeddings hold {embeddings.shape[0]}")
        memory = cls(settings)
        with_payload = set(meta.get("payload_ids", []))
        for entry_id, name, embedding, stamp in zip(ids, names, embeddings, stamps):
            payload_file = directory / "payloads" / f"{entry_id}.bin"
            payload = payload_file.read_bytes() if entry_id in with_payload else None
            memory._next_id = int(entry_id)
            memory.add(embedding, stamp_ns=int(stamp), name=name, payload=payload)
        memory._next_id = int(meta.get("next_id", memory._next_id))
        return memory


def _atomic(path: Path, write) -> None:  # noqa: ANN001 - a callable taking a path
    """Write through a temporary file in the same folder, then rename: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
