"""Errors of the data engine, shaped so a user can fix the input without reading our code."""

from __future__ import annotations

from pathlib import Path


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


class WorkFileMismatch(DataEngineError):
    """The work directory was written by a run with different settings or inputs."""
