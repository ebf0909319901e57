"""What the read-outs return: matches comparable across images rank the images that show an
instruction best."""

from __future__ import annotations

import numpy as np
import pytest

from find_ros.model import EntityMask, GroundingResult
from find_ros.model.results import rank_by_match


def _result(*matches: float) -> GroundingResult:
    mask = np.zeros((4, 4), bool)
    return GroundingResult((4, 4), [EntityMask(f"e{k}", 0.5, mask, 0, match=m) for k, m in enumerate(matches)])


def test_an_images_match_is_its_entities_mean_or_the_one_asked_for() -> None:
    result = _result(2.0, 6.0)
    assert result.match() == pytest.approx(4.0)
    assert result.match(1) == 6.0 and result.match(0) == 2.0


def test_ranking_puts_the_best_match_first_and_ungrounded_images_last() -> None:
    # Images 1 and 4 could not be grounded (their pictures were dropped): after every grounded
    # one, in the order given; ties among grounded ones keep their order too.
    assert rank_by_match([1.0, None, 3.0, 1.0, None, 2.5]) == [2, 5, 0, 3, 1, 4]
    assert rank_by_match([None, None]) == [0, 1]
    assert rank_by_match([]) == []


def _seen(confidence: float, match: float) -> GroundingResult:
    mask = np.zeros((4, 4), bool)
    return GroundingResult((4, 4), [EntityMask("e", 0.5, mask, 0, match=match, confidence=confidence, found=confidence >= 0.5)])


def test_a_frame_without_the_entity_never_outranks_one_that_clearly_shows_it() -> None:
    # The absent frame's match logit is the highest (what ranking by match alone would pick first);
    # the calibrated presence puts the frames that show the entity first, the match breaking ties.
    frames = [_seen(0.05, 9.0), _seen(0.9, 4.0), _seen(0.9, 5.0), _seen(0.6, 8.0)]
    assert rank_by_match([f.presence_rank() for f in frames]) == [2, 1, 3, 0]
    assert rank_by_match([f.match() for f in frames])[0] == 0
    # An instruction is in view when all its entities are: the least certain one counts.
    two = GroundingResult((4, 4), _seen(0.9, 1.0).entities + _seen(0.2, 1.0).entities)
    assert two.confidence() == 0.2 and GroundingResult((4, 4), []).confidence() == 0.0
