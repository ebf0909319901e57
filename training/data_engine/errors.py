"""Errors of the data engine, shaped so a user can fix the input without reading our code."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


class DataEngineError(Exception):
    """Base class: anything the engine refuses to do, with a message meant for the user."""


class InputFormatError(DataEngineError, ValueError):
    """A malformed input file: names the file, the record inside it and what was wrong."""

    def __init__(self, path: str | Path, record: str, reason: str) -> None:
        self.path = str(path)
        self.record = record
        self.reason = reason
        where = f"{self.path}: {record}" if record else self.path
        super().__init__(f"{where}: {reason}")


def require_ints(path: str | Path, record: str, obj: Mapping[str, Any], keys: Iterable[str]) -> None:
    """Raise :class:`InputFormatError` unless every ``obj[key]`` is an integer (bool is not)."""
    for key in keys:
        value = obj.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise InputFormatError(path, record, f"'{key}' must be an integer, got {value!r}")


class WorkFileMismatch(DataEngineError):
    """The work directory was written by a run with different settings or inputs."""
