"""The instructions a node holds, and its flood policy: bounded, and it never evicts.

A shared robot has several clients. Dropping the oldest instruction to make room for a new one lets
one client's flood silently stop everybody else's work, so the book refuses instead:

* at most ``capacity`` instructions (parameter ``max_instructions``); a new id beyond that is refused
  with the reason, and the sender learns it (the node publishes the refusal). Re-sending an id the
  book holds replaces it in place and needs no room; cancelling frees room.
* at most ``per_sender`` of them from one sender (``max_instructions_per_sender``), so a runaway
  client cannot take every place. A sender is the DDS writer an instruction came from (its
  publisher's GID); service requests carry no sender and count only against the total.

Every refusal is counted by cause (:class:`BookStats`), for /diagnostics.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

FLOOD_POLICY = "refuse new instructions when full or over the per-sender limit; never evict"


@dataclass
class BookStats:
    refused_full: int = 0
    refused_sender: int = 0
    cancelled: int = 0


class InstructionBook(Generic[T]):
    """Instructions by id in arrival order, with the sender of each; safe to use from any thread."""

    def __init__(self, capacity: int, per_sender: int) -> None:
        if capacity < 1 or per_sender < 1:
            raise ValueError(f"capacity and per_sender must be positive, got {capacity} and {per_sender}")
        self.capacity = capacity
        self.per_sender = per_sender
        self.stats = BookStats()
        self._entries: OrderedDict[str, tuple[str | None, T]] = OrderedDict()
        self._lock = threading.Lock()

    def room_for(self, instruction_id: str, sender: str | None) -> str | None:
        """Why an instruction with this id from this sender is refused now (counted); None if it fits.
        Asked before an instruction is checked, so a flood costs no checking work."""
        with self._lock:
            return self._refusal(instruction_id, sender)

    def admit(self, instruction_id: str, sender: str | None, entry: T) -> str | None:
        """Keep ``entry`` under ``instruction_id`` unless the policy refuses it; returns the refusal."""
        with self._lock:
            refusal = self._refusal(instruction_id, sender)
            if refusal is None:
                self._entries.pop(instruction_id, None)
                self._entries[instruction_id] = (sender, entry)
            return refusal

    def _refusal(self, instruction_id: str, sender: str | None) -> str | None:
        if instruction_id in self._entries:
            return None  # a replacement takes the place it had
        if len(self._entries) >= self.capacity:
            self.stats.refused_full += 1
            return (f"{self.capacity} instructions are active (max_instructions); "
                    "cancel one or wait until one is cancelled")
        if sender is not None and sum(s == sender for s, _ in self._entries.values()) >= self.per_sender:
            self.stats.refused_sender += 1
            return (f"this sender already has {self.per_sender} active instructions "
                    "(max_instructions_per_sender); cancel one first")
        return None

    def remove(self, instruction_id: str, only: T | None = None) -> T | None:
        """Take an instruction out (cancelled, or failed); None if the book does not hold it. With
        ``only``, it is taken out only if it is still that entry (not one re-sent since)."""
        with self._lock:
            found = self._entries.get(instruction_id)
            if found is None or (only is not None and found[1] is not only):
                return None
            del self._entries[instruction_id]
        return found[1]

    def cancel(self, instruction_id: str) -> bool:
        found = self.remove(instruction_id) is not None
        if found:
            self.stats.cancelled += 1
        return found

    def cancel_all(self) -> list[str]:
        """Cancel every instruction; returns their ids."""
        with self._lock:
            ids = list(self._entries)
            self._entries.clear()
            self.stats.cancelled += len(ids)
        return ids

    def get(self, instruction_id: str) -> T | None:
        with self._lock:
            found = self._entries.get(instruction_id)
        return None if found is None else found[1]

    def values(self) -> list[T]:
        with self._lock:
            return [entry for _, entry in self._entries.values()]

    def __len__(self) -> int:
        return len(self._entries)
