"""What an instruction must pass before a node accepts it, checked the moment it arrives.

A sender is answered at once (the service's ``accepted``, the status topic) instead of learning on
the next frame that its instruction was dropped. Cheapest first: the message (id length, grammar,
crop sizes against ``max_image_pixels``: instruction_msgs.read_instruction), the text's length in
language-model tokens (find_ros.model.text_budget), then each frame region against the frames the
node remembers. A region's crop is cut right then, so it cannot go stale when the frame is
forgotten later. What passes can still fail while the model encodes it; the node then publishes that
failure with the instruction id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from find_ros.instructions import ParsedInstruction
from find_ros.nodes.instruction_msgs import FrameRegion, read_instruction


@dataclass(frozen=True)
class Admitted:
    """An instruction that passed: its entities and one RGB crop per visual entity."""

    parsed: ParsedInstruction
    crops: list[np.ndarray]


def check_instruction(
    msg: Any,
    *,
    max_pixels: int,
    budget: Any | None,
    frame_at: Callable[[int], np.ndarray | None],
) -> Admitted:
    """Everything about ``msg`` that can be known now; ValueError naming the first problem.

    ``budget`` is the model's :class:`~find_ros.model.text_budget.TextBudget` (None: no tokenizer
    could be read, the model checks the length when it encodes); ``frame_at(stamp_ns)`` is the
    remembered frame at that stamp, or None.
    """
    parsed, visuals = read_instruction(msg, max_pixels)
    if budget is not None:
        budget.check(parsed)
    crops = []
    for k, visual in enumerate(visuals):
        if isinstance(visual, FrameRegion):
            try:
                crops.append(cut_region(frame_at(visual.stamp_ns), visual))
            except ValueError as error:
                raise ValueError(f"visual entity <{k}>: {error}") from None
        else:
            crops.append(visual)
    return Admitted(parsed, crops)


def cut_region(frame: np.ndarray | None, region: FrameRegion) -> np.ndarray:
    """The pixels of ``region`` in ``frame``; a box reaching past the border is clipped to it."""
    if frame is None:
        raise ValueError(f"no remembered frame at stamp {region.stamp_ns} ns")
    x0, y0, x1, y1 = region.box
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"region {region.box} lies outside the {w}x{h} frame at stamp {region.stamp_ns} ns")
    return frame[y0:y1, x0:x1].copy()
