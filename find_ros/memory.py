"""A bounded memory of embeddings for video localization and album search.

Each entry is one remembered image: a unit-norm embedding (FIND's image-level embedding), a stamp in
nanoseconds (camera frames) and/or a name (album files), and an optional payload: a compressed copy of
the frame, kept so the best match can be grounded again and so "this box in the frame at stamp t" can be
resolved.

Bounded twice: at most ``capacity`` entries (the oldest is evicted first) and at most
``max_payload_bytes`` of payloads (the oldest payloads are dropped first; their embeddings stay
searchable). A keyframe policy keeps the memory from filling with near-identical frames: a frame is
kept when ``min_interval_s`` has passed since the last keyframe, or when the view changed (cosine to the
last keyframe below ``change_threshold``).

Layout. Entries only ever leave oldest-first, so the live ids are always one contiguous range
``[first_id, next_id)`` and live in ring buffers indexed by ``id % capacity`` (embeddings, stamps,
names). The buffers are allocated once with ``np.empty``: the operating system maps pages only when
they are written, so a memory sized for a million frames costs what it holds, not what it could hold.

Search picks its index by size. Up to ``exact_limit`` entries it is exact: one matrix-vector product
over the ring (cosine on unit vectors). Past that an exact scan costs a full read of the embeddings per
query (about 40 ms for a million 96-d vectors on a 2-core CPU), so the memory switches, once, to a faiss
inverted-file index (``IndexIVFFlat``, inner product, ``ivf_lists`` k-means cells trained on the entries
it holds at the switch, ``ivf_probe`` cells searched per query). It stores the full vectors, so the
scores it returns are exact cosines; only which candidates are looked at is approximate
(``benchmarks/memory.py`` measures the recall against the exact scan). ``index_kind`` says which one is
in use (the localization node reports it on ``/diagnostics``).

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
    exact_limit: int = 65_536  # up to this many entries search scans them all; beyond, faiss IVF
    ivf_lists: int = 256       # k-means cells of the IVF index (trained once, at the switch)
    ivf_probe: int = 24        # cells searched per query

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be > 0, got {value}"
            for name, value in (("dim", self.dim), ("capacity", self.capacity), ("exact_limit", self.exact_limit),
                                ("ivf_lists", self.ivf_lists), ("ivf_probe", self.ivf_probe))
            if value <= 0
        ]
        if self.max_payload_bytes < 0:
            problems.append(f"max_payload_bytes must be >= 0, got {self.max_payload_bytes}")
        if self.exact_limit < self.ivf_lists * 39:
            # faiss' k-means wants at least 39 points per cell; fewer gives empty or unstable cells.
            problems.append(f"exact_limit ({self.exact_limit}) must be at least 39 x ivf_lists ({self.ivf_lists})")
        if problems:
            raise ValueError("memory settings: " + "; ".join(problems))


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
        self.settings = settings
        self._vectors = np.empty((settings.capacity, settings.dim), dtype=np.float32)
        self._stamps = np.zeros(settings.capacity, dtype=np.int64)
        self._names: list[str] = [""] * settings.capacity
        self._first_id = 0
        self._next_id = 0
        self._payloads: OrderedDict[int, bytes] = OrderedDict()
        self._payload_bytes = 0
        self._last_keyframe: tuple[int, np.ndarray] | None = None
        self._ivf = None  # faiss index once the memory outgrew exact_limit

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
        """Add one entry unconditionally, evicting the oldest entry beyond capacity."""
        unit = self._unit(embedding)
        if len(self) == self.settings.capacity:
            self._evict_oldest()
        entry_id = self._next_id
        self._next_id += 1
        slot = entry_id % self.settings.capacity
        self._vectors[slot] = unit
        self._stamps[slot] = int(stamp_ns)
        self._names[slot] = name
        self._last_keyframe = (int(stamp_ns), unit)
        if self._ivf is not None:
            self._ivf.add_with_ids(unit[None, :], np.array([entry_id], dtype=np.int64))
        elif len(self) > self.settings.exact_limit:
            self._build_ivf()
        if payload is not None:
            self._payloads[entry_id] = bytes(payload)
            self._payload_bytes += len(payload)
        while self._payload_bytes > self.settings.max_payload_bytes and self._payloads:
            dropped = self._payloads.popitem(last=False)[1]
            self._payload_bytes -= len(dropped)
        return entry_id

    def _evict_oldest(self) -> None:
        entry_id = self._first_id
        self._first_id += 1
        self._names[entry_id % self.settings.capacity] = ""
        if self._ivf is not None:
            self._ivf.remove_ids(np.array([entry_id], dtype=np.int64))
        dropped = self._payloads.pop(entry_id, None)
        if dropped is not None:
            self._payload_bytes -= len(dropped)

    def _build_ivf(self) -> None:
        """Switch to the inverted-file index: k-means on the entries held now, then add them all."""
        import faiss

        s = self.settings
        ids = np.arange(self._first_id, self._next_id, dtype=np.int64)
        vectors = self._vectors[ids % s.capacity]
        quantizer = faiss.IndexFlatIP(s.dim)
        index = faiss.IndexIVFFlat(quantizer, s.dim, s.ivf_lists, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = 0   # the same entries give the same cells
        index.cp.niter = 10  # k-means converges well before faiss's default 25 on frame embeddings; the switch blocks the worker
        index.train(vectors)
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # remove_ids of evicted entries in O(1)
        index.add_with_ids(vectors, ids)
        index.nprobe = min(s.ivf_probe, s.ivf_lists)
        self._ivf = index
        self._quantizer = quantizer  # the index does not own its quantizer: keep it alive beside it

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
        return self._next_id - self._first_id

    @property
    def payload_bytes(self) -> int:
        return self._payload_bytes

    @property
    def index_kind(self) -> str:
        """Which search is in use: ``exact`` or the faiss index (with its cells and probes)."""
        if self._ivf is None:
            return "exact"
        return f"faiss IVF{self.settings.ivf_lists},Flat nprobe={self._ivf.nprobe}"

    def _live_ids(self) -> np.ndarray:
        return np.arange(self._first_id, self._next_id, dtype=np.int64)

    def _match(self, entry_id: int, score: float) -> Match:
        slot = entry_id % self.settings.capacity
        return Match(int(entry_id), int(self._stamps[slot]), self._names[slot], float(score))

    def search(self, query: np.ndarray, k: int = 5) -> list[Match]:
        """The ``k`` entries most similar to ``query`` (cosine), best first."""
        if not len(self):
            return []
        k = max(1, min(int(k), len(self)))
        unit = self._unit(query)
        if self._ivf is not None:
            scores, ids = self._ivf.search(unit[None, :], k)
            return [self._match(int(i), float(s)) for s, i in zip(scores[0], ids[0]) if i >= 0]
        return self.search_exact(unit, k)

    def search_exact(self, query: np.ndarray, k: int = 5) -> list[Match]:
        """The exact ``k`` nearest entries by a scan of all of them, whatever index is in use."""
        if not len(self):
            return []
        k = max(1, min(int(k), len(self)))
        unit = self._unit(query)
        # The live entries occupy slots [first, first + n) of the ring, wrapping at most once: scan
        # those one or two blocks in place (no gather copy); block offset j is entry first_id + j.
        first, n, capacity = self._first_id % self.settings.capacity, len(self), self.settings.capacity
        head = self._vectors[first: min(first + n, capacity)] @ unit
        scores = head if len(head) == n else np.concatenate([head, self._vectors[: n - len(head)] @ unit])
        top = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
        order = sorted(top.tolist(), key=lambda j: (-scores[j], j))  # best first; ties: the older entry
        return [self._match(self._first_id + j, float(scores[j])) for j in order]

    def payload(self, entry_id: int) -> bytes | None:
        return self._payloads.get(entry_id)

    def nearest_in_time(self, stamp_ns: int, tolerance_ns: int) -> int | None:
        """The id of the entry whose stamp is closest to ``stamp_ns`` within the tolerance."""
        if not len(self):
            return None
        ids = self._live_ids()
        gaps = np.abs(self._stamps[ids % self.settings.capacity] - int(stamp_ns))
        best = int(np.argmin(gaps))  # first of equal gaps: the oldest
        return int(ids[best]) if gaps[best] <= tolerance_ns else None

    def entry(self, entry_id: int) -> tuple[int, str, np.ndarray]:
        """(stamp_ns, name, unit embedding) of an entry; KeyError if it was evicted."""
        if not self._first_id <= entry_id < self._next_id:
            raise KeyError(entry_id)
        slot = entry_id % self.settings.capacity
        return int(self._stamps[slot]), self._names[slot], self._vectors[slot].copy()

    # --- persistence --------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the memory to ``directory`` (created); files are replaced atomically."""
        from safetensors.numpy import save_file

        directory = Path(directory)
        (directory / "payloads").mkdir(parents=True, exist_ok=True)
        ids = self._live_ids()
        slots = ids % self.settings.capacity
        embeddings = np.ascontiguousarray(self._vectors[slots])
        stamps = np.ascontiguousarray(self._stamps[slots])
        _atomic(directory / "embeddings.safetensors", lambda p: save_file({"embeddings": embeddings, "stamps_ns": stamps}, p))
        for entry_id, data in self._payloads.items():
            _atomic(directory / "payloads" / f"{entry_id}.bin", lambda p, d=data: Path(p).write_bytes(d))
        meta = {
            "format_version": FORMAT_VERSION,
            "settings": asdict(self.settings),
            "ids": ids.tolist(),
            "names": [self._names[s] for s in slots.tolist()],
            "payload_ids": list(self._payloads),
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
        first = int(ids[0]) if ids else int(meta.get("next_id", 0))
        if ids != list(range(first, first + len(ids))) or len(ids) > settings.capacity:
            raise ValueError(f"{meta_path}: entry ids must be one increasing run of at most capacity "
                             f"({settings.capacity}) entries")
        if embeddings.ndim != 2 or embeddings.shape[1] != settings.dim:
            raise ValueError(f"{tensors_path}: embeddings are {list(embeddings.shape)}, settings say {settings.dim}-d")
        norms = np.linalg.norm(embeddings, axis=1) if len(ids) else np.ones(0)
        if not np.all(np.isfinite(norms)) or np.any(norms == 0):
            raise ValueError(f"{tensors_path}: an embedding is zero or not finite")
        memory = cls(settings)
        # Bulk fill: one copy into the ring and at most one index build, not one add() per entry.
        memory._first_id, memory._next_id = first, first + len(ids)
        slots = np.arange(first, first + len(ids)) % settings.capacity
        memory._vectors[slots] = embeddings / norms[:, None]
        memory._stamps[slots] = stamps
        for slot, name in zip(slots.tolist(), names):
            memory._names[slot] = name
        if len(ids):
            last = slots[-1]
            memory._last_keyframe = (int(memory._stamps[last]), memory._vectors[last].copy())
        if len(memory) > settings.exact_limit:
            memory._build_ivf()
        # The newest payloads that fit max_payload_bytes, as add() keeps them; sizes are read before
        # contents, so a file that would be dropped at once is never read.
        newest: list[tuple[int, bytes]] = []
        room = settings.max_payload_bytes
        for entry_id in reversed(meta.get("payload_ids", [])):
            if not first <= entry_id < memory._next_id:
                continue
            path = directory / "payloads" / f"{entry_id}.bin"
            if path.stat().st_size > room:
                break
            newest.append((entry_id, path.read_bytes()))
            room -= len(newest[-1][1])
        for entry_id, data in reversed(newest):
            memory._payloads[entry_id] = data
            memory._payload_bytes += len(data)
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
