"""The [id]<text> markup: what is accepted, what is rejected and why, and the offsets it yields."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.data_engine.markup import MarkupError, parse_caption, parse_response

IDS = {5721674, 4345187, 3171126, 1778208}
PAPER = (
    "[5721674]<A baseball player in a black and white uniform> crouches on [4345187]<the sandy ground> "
    "near [3171126]<the playing field>, holding a [1778208]<black leather baseball glove>, taking a break."
)


def test_paper_example_parses_with_offsets_in_both_sentences():
    c = parse_caption(PAPER, IDS)
    assert c.sentence == (
        "A baseball player in a black and white uniform crouches on the sandy ground near the playing field, "
        "holding a black leather baseball glove, taking a break."
    )
    assert [p.segment_id for p in c.phrases] == [5721674, 4345187, 3171126, 1778208]
    for p in c.phrases:
        assert c.sentence[p.start : p.end] == p.text  # start_idx/end_idx (and _start_idx): plain sentence
        assert c.sentence_raw[p.raw_start : p.raw_start + len(p.raw)] == p.raw
        assert p.raw == f"[{p.segment_id}]<{p.text}>"
    first, second = c.phrases[0], c.phrases[1]
    assert first.start == first.raw_start == 0
    # Each earlier entity shifts the raw position right by its markup: "[5721674]<" + ">" = 11 characters.
    assert second.raw_start - second.start == len("[5721674]<>")


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("[999]<A dog> runs.", "unknown_id"),
        ("[5721674]<A man> with [5721674]<a hat>.", "duplicate_id"),
        ("[5721674]<A man with [4345187]<a hat>>.", "nested_or_overlapping"),
        ("[5721674]<A man [4345187]<and> a hat>.", "nested_or_overlapping"),
        ("[5721674]<A man standing.", "unclosed_entity"),
        ("[5721674] A man.", "missing_text"),
        ("[]<A man>.", "malformed_id"),
        ("[abc]<A man>.", "malformed_id"),
        ("A man > a dog, [5721674]<a cat>.", "stray_bracket"),
        ("[5721674]<A man> near the <field>.", "stray_bracket"),
        ("A man stands on the field.", "no_entities"),
        ("[5721674]<>", "empty_entity"),
        ("[5721674]< A man> walks.", "untidy_whitespace"),
        ("[5721674]<A man>  walks.", "untidy_whitespace"),
        ("[5721674]<A man> walks .", "untidy_whitespace"),
        (" [5721674]<A man> walks.", "untidy_whitespace"),
        ("A tall[5721674]<man> walks.", "glued_entity"),
        ("[5721674]<A man>walks.", "glued_entity"),
        ("[5721674]<A man> talks to [4345187]<a man>, [3171126]<a man> listens.", "repeated_phrase"),
        ("[5721674]<A car> is next to [4345187]<a carrot>, not [3171126]<a car>.", "repeated_phrase"),
    ],
)
def test_rejections_carry_a_reason(raw, reason):
    with pytest.raises(MarkupError) as e:
        parse_caption(raw, IDS)
    assert e.value.reason == reason


def test_punctuation_and_quotes_next_to_entities_are_fine():
    c = parse_caption('He said "[5721674]<a man>", then left ([4345187]<the ground>).', IDS)
    assert c.sentence == 'He said "a man", then left (the ground).'


def test_response_needs_exact_caption_count_and_tolerates_list_markers():
    text = "1. [5721674]<A man> walks.\n\n2) [4345187]<The ground> is sandy.\n"
    caps = parse_response(text, 2, IDS)
    assert [c.sentence for c in caps] == ["A man walks.", "The ground is sandy."]
    with pytest.raises(MarkupError) as e:
        parse_response(text, 3, IDS)
    assert e.value.reason == "wrong_caption_count"
    with pytest.raises(MarkupError) as e:
        parse_response("   ", 1, IDS)
    assert e.value.reason == "empty_response"
    # One bad line rejects the whole answer: never half-valid.
    with pytest.raises(MarkupError) as e:
        parse_response("[5721674]<A man> walks.\n[1]<A ghost> floats.", 2, IDS)
    assert e.value.reason == "unknown_id"


def test_non_strict_reading_accepts_untidy_text_but_not_broken_structure():
    c = parse_caption("[5]<a man>  and [5]<a man>", strict=False)
    assert [p.start for p in c.phrases] == [0, 11]  # "a man" + "  and "
    with pytest.raises(MarkupError):
        parse_caption("[5]<a [6]<man>>", strict=False)


words = st.text(alphabet="abcdefghij", min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 2**24 - 1), st.lists(words, min_size=1, max_size=3), words), min_size=1, max_size=5, unique_by=lambda t: t[0]))
def test_offsets_hold_for_any_composed_caption(pieces):
    # "w<id>w" makes each phrase's text unique and not part of another (fillers have no "w").
    texts = [" ".join([*ph, f"w{sid}w"]) for sid, ph, _ in pieces]
    raw = " ".join(f"[{sid}]<{t}> {filler}" for (sid, _, filler), t in zip(pieces, texts)) + "."
    c = parse_caption(raw, {p[0] for p in pieces})
    assert len(c.phrases) == len(pieces)
    for p, (sid, _, _), t in zip(c.phrases, pieces, texts):
        assert p.segment_id == sid and p.text == t
        assert c.sentence[p.start : p.end] == p.text
        assert raw[p.raw_start :].startswith(p.raw)
    assert "[" not in c.sentence and "<" not in c.sentence
