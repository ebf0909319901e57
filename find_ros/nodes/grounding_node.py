"""Grounding node: per-frame interleave grounding of every active instruction on a camera stream.

Publishes find_ros_msgs/Grounding per frame and instruction, an overlay image, and diagnostics.
Offers ~/set_instruction (find_ros_msgs/SetInstruction) besides the instruction topic. The lifecycle,
the latest-frame worker, the input checks, the instruction answers and ~/cancel_instruction live in
find_ros.nodes.base.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from find_ros.nodes.base import PerceptionNode
from find_ros.nodes.params import GroundingParams
from find_ros.nodes.result_msgs import grounding_msg

if TYPE_CHECKING:
    from find_ros_msgs.msg import Instruction
    from find_ros_msgs.srv import SetInstruction
    from std_msgs.msg import Header

    from find_ros.model import ImageEmbeddings


class GroundingNode(PerceptionNode):
    params_type = GroundingParams

    def __init__(self, name: str = "find_grounding", **kwargs: Any) -> None:
        super().__init__(name, **kwargs)

    def create_outputs(self) -> None:
        from find_ros_msgs.msg import Grounding
        from find_ros_msgs.srv import SetInstruction
        from sensor_msgs.msg import Image

        p = self.params
        self._grounding_pub = self.create_lifecycle_publisher(Grounding, p.grounding_topic, 10)
        self._overlay_pub = self.create_lifecycle_publisher(Image, p.overlay_topic, 1) if p.publish_overlay else None
        self._service = self.create_service(SetInstruction, "~/set_instruction", self._on_set_instruction)

    def destroy_outputs(self) -> None:
        self.destroy_service(self._service)
        self.destroy_lifecycle_publisher(self._grounding_pub)
        if self._overlay_pub is not None:
            self.destroy_lifecycle_publisher(self._overlay_pub)

    def wants(self, msg: Instruction) -> bool:
        return bool(msg.want_grounding)

    def _on_set_instruction(self, request: SetInstruction.Request, response: SetInstruction.Response) -> SetInstruction.Response:
        response.accepted, response.message = self.accept(request.instruction)
        return response

    def on_frame(self, rgb: np.ndarray, header: Header, frame: ImageEmbeddings, waited_s: float, decode_ms: float,
                 vision_ms: float) -> None:
        drawn = []
        actives = [(active, encoded) for active in self.active_instructions()
                   if (encoded := self.encoded(active)) is not None]
        t0 = time.perf_counter()
        # One interface pass for every active instruction; each message carries that pass's time.
        groundings = self.engine.ground_all(frame, [encoded for _, encoded in actives]) if actives else []
        interface_ms = (time.perf_counter() - t0) * 1e3
        for (active, _), grounded in zip(actives, groundings):
            t1 = time.perf_counter()
            msg = grounding_msg(header, active.msg.id, grounded, with_masks=self.params.publish_masks,
                                presence_threshold=self.params.presence_override)
            msg.timing.decode_ms, msg.timing.vision_ms = decode_ms, vision_ms
            msg.timing.interface_ms = interface_ms
            msg.timing.queue_ms = waited_s * 1e3
            msg.timing.postprocess_ms = (time.perf_counter() - t1) * 1e3
            self._grounding_pub.publish(msg)
            drawn.extend(e for e in grounded.entities if e.found_at(self.params.presence_override))
        if self._overlay_pub is not None and drawn:
            from find_ros.nodes.images import numpy_to_image_msg
            from find_ros.overlay import draw_overlay

            self._overlay_pub.publish(numpy_to_image_msg(draw_overlay(rgb, drawn), "rgb8", header))


def main(args: list[str] | None = None) -> None:
    """Entry point `grounding_node`: waits unconfigured unless the `autostart` parameter is true
    (find_ros.nodes.runner); on a robot it uses the machine's normal DDS settings."""
    from find_ros.nodes.runner import spin_nodes

    spin_nodes([GroundingNode], args=args)
