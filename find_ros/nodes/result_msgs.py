"""Model results -> find_ros_msgs: Grounding (one EntityResult per entity) and Localization.

The counterpart of :mod:`find_ros.nodes.instruction_msgs`, which reads what comes in. Masks are
``mono8`` images the size of the frame (255 inside) with the frame's header. With the frame's depth,
an entity that has a mask also gets its 3D position and box (find_ros.position3d).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from find_ros.nodes.images import numpy_to_image_msg

if TYPE_CHECKING:
    from find_ros_msgs.msg import EntityResult, FrameMatch, Grounding, Localization
    from std_msgs.msg import Header

    from find_ros.model.results import EntityMask, GroundingResult
    from find_ros.position3d import DepthView

MAX_LABEL_CHARS = 500


def entity_msg(entity: EntityMask, index: int, header: Header, with_mask: bool = True,
               presence_threshold: float | None = None, depth: DepthView | None = None) -> EntityResult:
    """find_ros_msgs/EntityResult of the ``index``-th entity: its presence, and its box, mask and 3D
    position only when found (:meth:`EntityMask.found_at` ``presence_threshold``; None: the model's)."""
    from find_ros_msgs.msg import EntityResult

    msg = EntityResult()
    msg.entity_index = index
    msg.label = entity.label[:MAX_LABEL_CHARS]
    msg.visual_index = -1 if entity.visual_index is None else int(entity.visual_index)
    msg.score = float(entity.score)
    msg.confidence = float(entity.confidence)
    msg.found = entity.found_at(presence_threshold)
    if not msg.found:
        return msg
    if entity.box is not None:
        x0, y0, x1, y1 = entity.box
        msg.box.x_offset, msg.box.y_offset, msg.box.width, msg.box.height = x0, y0, x1 - x0, y1 - y0
    msg.mask_area = entity.mask_area
    if with_mask:
        msg.mask = numpy_to_image_msg(entity.mask.astype(np.uint8) * 255, "mono8", header)
    if depth is not None:
        fill_position(msg, entity.mask, depth)
    return msg


def fill_position(msg: EntityResult, mask: np.ndarray, depth: DepthView) -> None:
    """Set the EntityResult's 3D fields from the mask's depth points (left unset when too few)."""
    found = depth.locate(mask)
    if found is None:
        return
    msg.has_position = True
    for point, values in ((msg.position, found.position), (msg.box_min, found.box_min), (msg.box_max, found.box_max)):
        point.x, point.y, point.z = (float(v) for v in values)
    msg.depth_points = found.points


def grounding_msg(header: Header, instruction_id: str, result: GroundingResult, *, with_masks: bool = True,
                  presence_threshold: float | None = None, depth: DepthView | None = None) -> Grounding:
    """find_ros_msgs/Grounding of one frame and one instruction (timing left to the caller)."""
    from find_ros_msgs.msg import Grounding

    msg = Grounding()
    msg.header = header
    msg.instruction_id = instruction_id
    msg.image_height, msg.image_width = int(result.image_size[0]), int(result.image_size[1])
    msg.entities = [entity_msg(e, k, header, with_masks, presence_threshold, depth) for k, e in enumerate(result.entities)]
    return msg


def frame_match(stamp_ns: int, score: float, frame_id: str = "") -> FrameMatch:
    """find_ros_msgs/FrameMatch: a remembered (or live) frame by its stamp and camera frame, and how
    well it matched."""
    from find_ros_msgs.msg import FrameMatch

    msg = FrameMatch(score=float(score), frame_id=frame_id)
    msg.stamp.sec, msg.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return msg


def localization_msg(header: Header, instruction_id: str, matches: Sequence[tuple[int, float, str]],
                     best_frame: Grounding | None = None, *, live: bool = False) -> Localization:
    """find_ros_msgs/Localization: ``matches`` as (stamp_ns, score, camera frame id), best first;
    ``best_frame`` the instruction grounded in the first of them."""
    from find_ros_msgs.msg import Localization

    msg = Localization(instruction_id=instruction_id, live=live)
    msg.header = header
    msg.matches = [frame_match(*match) for match in matches]
    if best_frame is not None:
        msg.best_frame = best_frame
    return msg
