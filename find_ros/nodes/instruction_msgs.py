"""find_ros_msgs/Instruction <-> Python: building one (or a cancel) from text and crops, reading one
back, and the InstructionStatus a node answers with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from find_ros.instructions import InstructionError, ParsedInstruction, parse_instruction
from find_ros.image_header import DEFAULT_MAX_PIXELS
from find_ros.nodes.images import image_msg_to_rgb, numpy_to_image_msg

# Every result echoes the id; a 100 kB id would be copied into each of them.
MAX_ID_CHARS = 256


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


def build_cancel(instruction_id: str | None) -> Any:
    """An Instruction that cancels the instruction ``instruction_id`` on every node, or all with None."""
    from find_ros_msgs.msg import Instruction

    if instruction_id is None:
        return Instruction(action=Instruction.ACTION_CANCEL_ALL)
    return Instruction(id=instruction_id, action=Instruction.ACTION_CANCEL)


def read_instruction(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[ParsedInstruction, list[np.ndarray | FrameRegion]]:
    """Parse an Instruction message: its entities, and per visual entity an RGB crop or a FrameRegion.

    Crops of more than ``max_pixels`` are refused before they are copied. Raises ValueError
    (InstructionError, ImageConversionError or ImageTooLarge) naming what was wrong.
    """
    from find_ros_msgs.msg import VisualEntity

    if len(msg.id) > MAX_ID_CHARS:
        raise InstructionError(f"instruction id is {len(msg.id)} characters long; the limit is {MAX_ID_CHARS}")
    parsed = parse_instruction(msg.text, len(msg.visual_entities))  # the text first: it is cheap to check
    visuals: list[np.ndarray | FrameRegion] = []
    for k, entity in enumerate(msg.visual_entities):
        if entity.source == VisualEntity.SOURCE_CROP:
            try:
                visuals.append(image_msg_to_rgb(entity.crop, max_pixels))
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
    return parsed, visuals


def status_msg(node: Any, instruction_id: str, status: int, reason: str) -> Any:
    """find_ros_msgs/InstructionStatus: what ``node`` decided about an instruction, and why."""
    from find_ros_msgs.msg import InstructionStatus

    msg = InstructionStatus(node=node.get_name(), instruction_id=instruction_id[:MAX_ID_CHARS], status=status,
                            reason=reason[:1000])
    msg.header.stamp = node.get_clock().now().to_msg()
    return msg
