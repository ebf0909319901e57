"""The instruction grammar: <k> visual entities, [words] text entities, and clear errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from find_ros.instructions import MAX_INSTRUCTION_CHARS, InstructionError, parse_instruction


def test_plain_referring_expression_is_one_text_entity_plus_each_visual_one() -> None:
    parsed = parse_instruction("the red mug left of <0>", 1)
    assert [(e.label, e.visual_index) for e in parsed.entities] == [("the red mug left of <0>", None), ("<0>", 0)]
    assert parsed.pieces == ("the red mug left of ", 0)


def test_bracketed_text_entities_are_the_only_text_entities() -> None:
    parsed = parse_instruction("[the  mug] left of <1> near [a chair] and <0>", 2)
    assert [e.label for e in parsed.entities] == ["the mug", "<1>", "a chair", "<0>"]
    assert parsed.visual_indices == (1, 0)


@pytest.mark.parametrize(
    "text, num_visual, message",
    [
        ("", 0, "empty"),
        ("   \n", 0, "empty"),
        ("x" * (MAX_INSTRUCTION_CHARS + 1), 0, "limit"),
        ("the cup near <0>", 0, "placeholder <0> has no visual entity"),
        ("the cup", 1, "not referenced"),
        ("the [cup", 0, "malformed markup"),
        ("the <cup> there", 0, "malformed markup"),
        ("[] on the table", 0, "empty text entity"),
    ],
)
def test_bad_instructions_name_the_problem(text, num_visual, message) -> None:
    with pytest.raises(InstructionError, match=message):
        parse_instruction(text, num_visual)


def test_huge_instruction_is_refused_quickly() -> None:
    with pytest.raises(InstructionError, match="100000 characters"):
        parse_instruction("a" * 100_000, 0)


@given(st.text(max_size=300), st.integers(0, 3))
def test_parser_either_accepts_or_raises_instruction_error(text, num_visual) -> None:
    try:
        parsed = parse_instruction(text, num_visual)
    except InstructionError:
        return
    assert parsed.entities
    assert set(parsed.visual_indices) == set(range(num_visual))


def test_each_piece_knows_its_entity_even_when_plain_words_read_like_a_bracketed_one() -> None:
    parsed = parse_instruction("[a]x[x] near <0>", 1)
    assert parsed.pieces == ("a", "x", "x", " near ", 0)
    assert parsed.piece_entities == (0, None, 1, None, 2)
    assert not parsed.sentence_entity
    plain = parse_instruction("the mug left of <0>", 1)
    assert plain.sentence_entity and plain.piece_entities == (None, 1)
