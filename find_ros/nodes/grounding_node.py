"""Grounding node: per-frame interleave grounding of every active instruction on a camera stream.

Publishes find_ros_msgs/Grounding per frame and instruction, an overlay image, and diagnostics; with
several cameras, each camera's results under its namespace (find_ros.nodes.cameras). Entities carry
3D positions when the frame came with depth.
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
    from find_ros.nodes.cameras import Camera
    from find_ros.position3d import DepthView


class GroundingNode(PerceptionNode):
    params_type = GroundingParams

    def __init__(self, name: str = "find_grounding", **kwargs: Any) -> None:
        super().__init__(name, **kwargs)

    def create_outputs(self) -> None:
        from find_ros_msgs.msg import Grounding
        from find_ros_msgs.srv import SetInstruction
        from sensor_msgs.msg import Image

        p = self.params
        self._grounding_pubs = {c.name: self.create_lifecycle_publisher(Grounding, c.output_topic(p.grounding_topic), 10)
                                for c in self.cameras}
        self._overlay_pubs = {c.name: self.create_lifecycle_publisher(Image, c.output_topic(p.overlay_topic), 1)
                              for c in self.cameras} if p.publish_overlay else {}
        self._service = self.create_service(SetInstruction, "~/set_instruction", self._on_set_instruction)

    def destroy_outputs(self) -> None:
        self.destroy_service(self._service)
        for publisher in (*self._grounding_pubs.values(), *self._overlay_pubs.values()):
            self.destroy_lifecycle_publisher(publisher)

    def wants(self, msg: Instruction) -> bool:
        return bool(msg.want_grounding)

    def _on_set_instruction(self, request: SetInstruction.Request, response: SetInstruction.Response) -> SetInstruction.Response:
        response.accepted, response.message = self.accept(request.instruction)
        return response

    def on_frame(self, rgb: np.ndarray, header: Header, frame: ImageEmbeddings, waited_s: float, decode_ms: float,
                 vision_ms: float, camera: Camera | None = None, depth: DepthView | None = None) -> None:
        camera = camera or self.cameras[0]
        drawn, markers = [], []
        actives = [(active, encoded) for active in self.active_instructions()
                   if (encoded := self.encoded(active)) is not None]
        t0 = time.perf_counter()
        # One interface pass for every active instruction; each message carries that pass's time.
        groundings = self.engine.ground_all(frame, [encoded for _, encoded in actives]) if actives else []
        interface_ms = (time.perf_counter() - t0) * 1e3
        for (active, _), grounded in zip(actives, groundings):
            t1 = time.perf_counter()
            msg = grounding_msg(header, active.msg.id, grounded, with_masks=self.params.publish_masks,
                                presence_threshold=self.params.presence_override, depth=depth)
            msg.timing.decode_ms, msg.timing.vision_ms = decode_ms, vision_ms
            msg.timing.interface_ms = interface_ms
            msg.timing.queue_ms = waited_s * 1e3
            msg.timing.postprocess_ms = (time.perf_counter() - t1) * 1e3
            self._grounding_pubs[camera.name].publish(msg)
            shown = [k for k, entity in enumerate(msg.entities) if entity.found]
            drawn.extend(grounded.entities[k] for k in shown)
            markers.extend(marker_of(msg.entities[k], depth) for k in shown)
        overlay_pub = self._overlay_pubs.get(camera.name)
        if overlay_pub is not None and drawn:
            from find_ros.nodes.images import numpy_to_image_msg
            from find_ros.overlay import draw_overlay

            overlay_pub.publish(numpy_to_image_msg(draw_overlay(rgb, drawn, markers=markers), "rgb8", header))


def marker_of(entity: Any, depth: DepthView | None) -> Any:
    """The overlay's 3D marker of a published EntityResult, or None without a position."""
    if depth is None or not entity.has_position:
        return None
    from find_ros.overlay import Marker3D

    xyz = (entity.position.x, entity.position.y, entity.position.z)
    return Marker3D(*depth.camera.project(np.array(xyz)), xyz)


def main(args: list[str] | None = None) -> None:
    """Entry point `grounding_node`: waits unconfigured unless the `autostart` parameter is true
    (find_ros.nodes.runner); on a robot it uses the machine's normal DDS settings."""
    from find_ros.nodes.runner import spin_nodes

    spin_nodes([GroundingNode], args=args)
