"""Model results as find_ros_msgs: an entity that is not found comes without box and mask."""

from __future__ import annotations

import numpy as np
from std_msgs.msg import Header

from find_ros.model import EntityMask, GroundingResult
from find_ros.nodes.result_msgs import grounding_msg


def _entity(confidence: float, found: bool) -> EntityMask:
    mask = np.zeros((6, 8), bool)
    mask[1:3, 2:5] = True
    return EntityMask("the red cone", 0.4, mask, 3, match=2.0, confidence=confidence, found=found)


def test_presence_is_published_and_only_found_entities_carry_box_and_mask() -> None:
    header = Header(frame_id="camera")
    result = GroundingResult((6, 8), [_entity(0.9, True), _entity(0.2, False)])
    msg = grounding_msg(header, "q", result)
    seen, missing = msg.entities
    assert seen.found and abs(seen.confidence - 0.9) < 1e-6 and abs(seen.score - 0.4) < 1e-6
    assert (seen.box.x_offset, seen.box.y_offset, seen.box.width, seen.box.height) == (2, 1, 3, 2)
    assert seen.mask_area == 6 and (seen.mask.width, seen.mask.height) == (8, 6) and seen.mask.header.frame_id == "camera"
    assert not missing.found and abs(missing.confidence - 0.2) < 1e-6
    assert (missing.box.width, missing.box.height, missing.mask_area, missing.mask.width) == (0, 0, 0, 0)

    # The node's presence_threshold overrides the model's decision, on the same confidence.
    strict = grounding_msg(header, "q", result, presence_threshold=0.95).entities
    lenient = grounding_msg(header, "q", result, presence_threshold=0.1).entities
    assert [e.found for e in strict] == [False, False] and strict[0].mask.width == 0
    assert [e.found for e in lenient] == [True, True] and lenient[1].mask_area == 6
    # Without masks (publish_masks false) a found entity still has its box and area.
    bare = grounding_msg(header, "q", result, with_masks=False).entities[0]
    assert bare.found and bare.mask.width == 0 and bare.mask_area == 6 and bare.box.width == 3


def test_the_presence_threshold_parameter_is_checked() -> None:
    import pytest

    from find_ros.nodes.params import GroundingParams

    assert GroundingParams().presence_override is None  # 0: the model's calibrated threshold
    assert GroundingParams(presence_threshold=0.7).presence_override == 0.7
    with pytest.raises(ValueError, match=r"presence_threshold must be in \[0, 1\)"):
        GroundingParams(presence_threshold=1.0)
