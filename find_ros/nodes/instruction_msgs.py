"""find_ros_msgs/Instruction <-> Python: building one from text and crops, and reading one back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from find_ros.instructions import ParsedInstruction, parse_instruction
from find_ros.nodes.images import image_msg_to_rgb, numpy_to_image_msg


@dataclass(frozen=True)
class FrameRegion:
    """A visual entity given as a box in an earlier frame: stamp in nanoseconds, box x0, y0, x1, y1."""

    stamp_ns: int
    box: tuple[int, int, int, int]


def build_instruction(
    text: str,
    crops: Sequence[np.ndarray | FrameRegion] = (),
    *,
    instruction_id: str = "",
    frame_id: str = "",
    want_grounding: bool = True,
    want_localization: bool = False,
    top_k: int = 0,
    stamp: Any = None,
) -> Any:
    """A find_ros_msgs/Instruction; RGB uint8 arrays become crops, FrameRegions become frame regions.

    The text is checked against the entities first, so a malformed instruction never leaves the sender.
    """
    from find_ros_msgs.msg import Instruction, VisualEntity

    parse_instruction(text, len(crops))
    msg = Instruction()
    msg.header.frame_id = frame_id
    if stamp is not None:
        msg.header.stamp = stamp
    msg.id = instruction_id
    msg.text = text
    msg.want_grounding = want_grounding
    msg.want_localization = want_localization
    msg.top_k = top_k
    for k, item in enumerate(crops):
        entity = VisualEntity()
        entity.label = f"<{k}>"
        if isinstance(item, FrameRegion):
            entity.source = VisualEntity.SOURCE_FRAME_REGION
            entity.frame_stamp.sec, entity.frame_stamp.nanosec = divmod(int(item.stamp_ns), 1_000_000_000)
            x0, y0, x1, y1 = (int(v) for v in item.box)
            entity.region.x_offset, entity.region.y_offset = x0, y0
            entity.region.width, entity.region.height = x1 - x0, y1 - y0
        else:
            entity.source = VisualEntity.SOURCE_CROP
            entity.crop = numpy_to_image_msg(np.asarray(item), "rgb8", msg.header)
        msg.visual_entities.append(entity)
    return msg


def read_instruction(msg: Any) -> tuple[ParsedInstruction, list[np.ndarray | FrameRegion]]:
    """Parse an Instruction message: its entities, and per visual entity an RGB crop or a FrameRegion.

    Raises ValueError (InstructionError or ImageConversionError) naming what was wrong.
    """
    from find_ros_msgs.msg import VisualEntity

    visuals: list[np.ndarray | FrameRegion] = []
    for k, entity in enumerate(msg.visual_entities):
        if entity.source == VisualEntity.SOURCE_CROP:
            try:
                visuals.append(image_msg_to_rgb(entity.crop))
            except ValueError as error:
                raise ValueError(f"visual entity <{k}>: {error}") from error
        elif entity.source == VisualEntity.SOURCE_FRAME_REGION:
            r = entity.region
            if r.width == 0 or r.height == 0:
                raise ValueError(f"visual entity <{k}>: frame region has zero size")
            stamp_ns = entity.frame_stamp.sec * 1_000_000_000 + entity.frame_stamp.nanosec
            visuals.append(FrameRegion(stamp_ns, (r.x_offset, r.y_offset, r.x_offset + r.width, r.y_offset + r.height)))
        else:
            raise ValueError(f"visual entity <{k}>: unknown source {entity.source}")
    return parse_instruction(msg.text, len(visuals)), visuals
