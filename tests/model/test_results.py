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
