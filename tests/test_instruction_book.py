"""The instruction book's flood policy: bounded, per sender, refusing instead of evicting."""

from __future__ import annotations

from find_ros.nodes.instruction_book import InstructionBook


def test_a_full_book_refuses_new_ids_and_keeps_every_held_one() -> None:
    book: InstructionBook[str] = InstructionBook(capacity=3, per_sender=3)
    for name in "abc":
        assert book.admit(name, "s1", name.upper()) is None
    refusal = book.admit("d", "s2", "D")
    assert refusal is not None and "3 instructions are active (max_instructions)" in refusal
    assert book.values() == ["A", "B", "C"] and book.stats.refused_full == 1
    assert book.admit("b", "s2", "B2") is None  # a replacement needs no room
    assert book.get("b") == "B2" and len(book) == 3
    assert book.cancel("a") and not book.cancel("a")
    assert book.admit("d", "s2", "D") is None
    assert sorted(book.cancel_all()) == ["b", "c", "d"] and len(book) == 0
    assert book.stats.cancelled == 4


def test_one_sender_cannot_take_every_place() -> None:
    book: InstructionBook[int] = InstructionBook(capacity=4, per_sender=2)
    assert book.admit("x1", "flooder", 1) is None and book.admit("x2", "flooder", 2) is None
    refusal = book.room_for("x3", "flooder")
    assert refusal is not None and "max_instructions_per_sender" in refusal
    assert book.admit("y1", "other", 3) is None
    assert book.admit("z1", None, 4) is None  # no sender identity (a service call): only the total counts
    assert book.stats.refused_sender == 1 and len(book) == 4
