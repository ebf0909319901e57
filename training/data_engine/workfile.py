"""Crash-safe files: an append-only JSONL work file, and atomic whole-file writes.

Work file: the first line is a header holding the run's fingerprint; every further line is one
finished image, written with a single ``write`` and made durable with ``fsync`` before the engine
moves on. A run killed at any point leaves at most one torn last line (no newline, or not JSON);
:meth:`WorkFile.open_for_append` cuts it off before appending, and :func:`read_records` ignores it,
so a restart neither loses a finished image nor writes one twice (records are keyed by image id and a
repeated id is ignored, which also covers a crash between write and bookkeeping).

Final outputs go through :func:`atomic_write_bytes`: temp file in the same directory, ``fsync``,
``os.replace``, ``fsync`` of the directory, so readers see the old file or the new one, never half.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import WorkFileMismatch



def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 would make outputs private; use the usual mode
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


_UMASK = _umask()


def _complete_lines(data: bytes) -> tuple[list[bytes], int]:
    """Complete, parseable lines and the byte length they span; a torn tail is left out."""
    lines: list[bytes] = []
    good = 0
    pos = 0
    while True:
        nl = data.find(b"\n", pos)
        if nl == -1:
            break
        line = data[pos:nl]
        try:
            json.loads(line)
        except ValueError:
            if data.find(b"\n", nl + 1) != -1:
                raise ValueError(f"corrupt line at byte {pos} (not the last line, so not a torn write)") from None
            break  # unparseable last line: treat like a torn write and drop it
        lines.append(line)
        pos = nl + 1
        good = pos
    return lines, good


def read_records(path: str | Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(header, records) of a work file; (None, []) if it does not exist. Read-only."""
    path = Path(path)
    if not path.exists():
        return None, []
    try:
        lines, _ = _complete_lines(path.read_bytes())
    except ValueError as e:
        raise WorkFileMismatch(f"{path}: {e}; delete the work directory to start over") from None
    if not lines:
        return None, []
    header = json.loads(lines[0])
    if header.get("kind") != "header":
        raise WorkFileMismatch(f"{path}: first line is not a header; delete the work directory to start over")
    return header, [json.loads(ln) for ln in lines[1:]]


def _diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    keys = sorted(set(a) | set(b))
    return [f"{k}: {a.get(k)!r} → {b.get(k)!r}" for k in keys if a.get(k) != b.get(k)]


class WorkFile:
    """Append-only JSONL of per-image records, bound to a fingerprint."""

    def __init__(self, path: str | Path, fingerprint: dict[str, Any]) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint
        self._fd: int | None = None

    def load(self) -> dict[Any, dict[str, Any]]:
        """Finished records by key (first occurrence wins). Raises if the fingerprint differs."""
        header, records = read_records(self.path)
        if header is not None and header.get("fingerprint") != self.fingerprint:
            changes = "; ".join(_diff(header.get("fingerprint", {}), self.fingerprint))
            raise WorkFileMismatch(
                f"{self.path} was written with other settings or inputs ({changes}). "
                "Re-run with the original settings to resume, or delete the work directory to start over."
            )
        done: dict[Any, dict[str, Any]] = {}
        for r in records:
            done.setdefault(r["key"], r)
        return done

    def open_for_append(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            data = os.pread(fd, size, 0) if size else b""
            _, good = _complete_lines(data)
            if good != size:  # cut a torn tail left by a killed run
                os.ftruncate(fd, good)
                os.fsync(fd)
            os.lseek(fd, 0, os.SEEK_END)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        if good == 0:
            self._write({"kind": "header", "version": 1, "fingerprint": self.fingerprint})

    def _write(self, obj: dict[str, Any]) -> None:
        assert self._fd is not None, "open_for_append() first"
        data = (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        os.fsync(self._fd)

    def append(self, key: Any, record: dict[str, Any]) -> None:
        """Durably append one finished record (returns after fsync)."""
        self._write({"key": key, **record})

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WorkFile:
        self.open_for_append()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
