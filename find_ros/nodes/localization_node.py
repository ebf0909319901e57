"""Video localization node: which remembered frames show what an instruction describes.

Every processed frame is encoded once; keyframes (by time or by change of view) go into a bounded
EmbeddingMemory with a JPEG copy of the frame. An instruction with want_localization (topic) or a
Localize request (service) is answered with the top-K frames and the entities grounded in the best
one: the ``rerank_candidates`` frames nearest by FIND's image and instruction embeddings are
re-scored by grounding the instruction in each (presence confidence, then match logit), which finds a small
object that a whole-frame embedding hardly shows. In continuous mode, each
live frame is scored against the active instructions and a Localization with ``live = true`` is
published when it matches. Visual entities given as frame regions are cut from remembered frames.
With several cameras one memory holds every camera's keyframes, each under the frame id of the camera
that saw it (FrameMatch.frame_id).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from find_ros.image_io import decode_image, encode_jpeg
from find_ros.memory import EmbeddingMemory, Match, MemorySettings
from find_ros.model.results import rank_by_match
from find_ros.nodes.base import ActiveInstruction, PerceptionNode, stamp_ns
from find_ros.nodes.latest_frame import LatestFrameWorker
from find_ros.nodes.params import LocalizationParams
from find_ros.nodes.result_msgs import grounding_msg, localization_msg

if TYPE_CHECKING:
    from find_ros_msgs.msg import Instruction, Localization
    from find_ros_msgs.srv import Localize
    from std_msgs.msg import Header

    from find_ros.model import ImageEmbeddings
    from find_ros.model.results import GroundingResult
    from find_ros.nodes.cameras import Camera
    from find_ros.nodes.engine import EncodedInstruction
    from find_ros.position3d import DepthView

MAX_PENDING_QUERIES = 16


class LocalizationNode(PerceptionNode):
    params_type = LocalizationParams
    recent_frames = 0  # the memory keeps the frames

    def __init__(self, name: str = "find_localization", **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.memory: EmbeddingMemory | None = None
        self._queries: LatestFrameWorker | None = None

    # --- outputs ------------------------------------------------------------------------------
    def create_outputs(self) -> None:
        from find_ros_msgs.msg import Localization
        from find_ros_msgs.srv import Localize
        from rclpy.callback_groups import ReentrantCallbackGroup

        self._localization_pub = self.create_lifecycle_publisher(Localization, self.params.localization_topic, 10)
        # Reentrant: a slow query must not hold up frames and instructions on a multi-threaded executor.
        self._service = self.create_service(Localize, "~/localize", self._on_localize, callback_group=ReentrantCallbackGroup())
        self._queries = LatestFrameWorker(self._answer_query, self._on_query_error, name=f"{self.get_name()}_queries", depth=MAX_PENDING_QUERIES)

    def destroy_outputs(self) -> None:
        if self._queries is not None:
            self._queries.stop()
            self._queries = None
        self.destroy_service(self._service)
        self.destroy_lifecycle_publisher(self._localization_pub)

    def on_activate(self, state: Any) -> Any:
        result = super().on_activate(state)
        if self.engine is not None and self.memory is None:
            p = self.params
            self.memory = EmbeddingMemory(
                MemorySettings(
                    dim=self.engine.embedding_dim,
                    capacity=p.memory_capacity,
                    max_payload_bytes=p.memory_payload_mb * 1024 * 1024,
                    min_interval_s=p.keyframe_interval_s,
                    change_threshold=p.keyframe_change_threshold,
                )
            )
        return result

    # --- instructions -------------------------------------------------------------------------
    def wants(self, msg: Instruction) -> bool:
        return bool(msg.want_localization)

    def accept(self, msg: Instruction, sender: str | None = None) -> tuple[bool, str]:
        accepted, reason = super().accept(msg, sender)
        if accepted and msg.want_localization and self._queries is not None and self.instructions.get(msg.id):
            self._queries.put(msg.id)  # answered on the query thread, also when no frames arrive
        return accepted, reason

    def _on_localize(self, request: Localize.Request, response: Localize.Response) -> Localize.Response:
        """A one-shot query: the request asks for localization whatever its want_* flags say, is
        checked as an instruction on the topic is, answered, and not kept (send it on the topic to
        have it kept, e.g. for the continuous mode)."""
        if self.engine is None or self.memory is None:
            state = self._state_machine.current_state[1]  # noqa: SLF001 - rclpy exposes no public getter
            response.success, response.message = False, f"the node is not active (state: {state}); activate it first"
            return response
        msg = request.instruction
        try:
            admitted = self.check(msg)
        except ValueError as error:
            response.success, response.message = self._refuse(msg.id, str(error))
            return response
        try:
            response.result = self.localize(ActiveInstruction(msg, admitted.parsed, admitted.crops),
                                             msg.top_k or self.params.top_k)
            response.success, response.message = True, f"{len(response.result.matches)} frame(s)"
        except ValueError as error:
            response.success, response.message = False, str(error)
        return response

    def _answer_query(self, instruction_id: str, waited_s: float) -> None:
        active = self.instructions.get(instruction_id)
        if active is None or self.engine is None:
            return  # cancelled meanwhile, or the node was deactivated
        self._localization_pub.publish(self.localize(active, active.msg.top_k or self.params.top_k))

    def _on_query_error(self, instruction_id: str, error: BaseException) -> None:
        self.report_error(f"localization of {instruction_id[:64]!r} failed: {error}")

    # --- the work -----------------------------------------------------------------------------
    def localize(self, active: ActiveInstruction, top_k: int) -> Localization:
        """A Localization message: the best frames for the instruction, grounded in the best one."""
        from std_msgs.msg import Header

        if self.engine is None or self.memory is None:
            raise ValueError("the node is not active")
        encoded = self.encoded(active)
        if encoded is None:
            raise ValueError(self.counters.last_error)
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=active.msg.header.frame_id)
        matches, grounded = self.rank_remembered(encoded, top_k)
        best_frame = None
        if matches:
            best = grounded.get(matches[0].entry_id) or self.ground_remembered(matches[0].entry_id, encoded)
            if best is not None:  # None: the best frame's picture was dropped from the memory
                best_header = Header(frame_id=matches[0].name)  # the camera that saw it
                best_header.stamp.sec, best_header.stamp.nanosec = divmod(matches[0].stamp_ns, 1_000_000_000)
                best_frame = grounding_msg(best_header, active.msg.id, best)
        return localization_msg(header, active.msg.id, [(m.stamp_ns, m.score, m.name) for m in matches], best_frame)

    def rank_remembered(self, encoded: EncodedInstruction, top_k: int) -> tuple[list[Match], dict[int, GroundingResult]]:
        """The ``top_k`` remembered frames for the instruction, best first, and the groundings made
        on the way. The ``rerank_candidates`` nearest by embedding are re-ranked by grounding the
        instruction in each, by presence then match logit (:meth:`GroundingResult.presence_rank`), so a
        frame that does not show the entity never ranks above one that clearly does; a frame whose picture was
        dropped keeps its embedding score and ranks after the grounded ones."""
        candidates = self.params.rerank_candidates
        shortlist = self.memory.search(self.engine.instruction_vector(encoded), max(top_k, candidates))
        if candidates <= 0:
            return shortlist[:top_k], {}
        pictures = {m.entry_id: self.remembered_picture(m.entry_id) for m in shortlist}
        kept = [entry_id for entry_id, picture in pictures.items() if picture is not None]
        grounded: dict[int, GroundingResult | None] = dict.fromkeys(pictures)
        # All candidates in batched passes rather than one frame at a time.
        grounded.update(zip(kept, self.engine.ground_frames([pictures[k] for k in kept], encoded)))
        keys = [None if grounded[m.entry_id] is None else grounded[m.entry_id].presence_rank() for m in shortlist]
        ranked = [shortlist[i] if keys[i] is None else Match(shortlist[i].entry_id, shortlist[i].stamp_ns,
                                                             shortlist[i].name, keys[i][0])
                  for i in rank_by_match(keys)]
        return ranked[: max(1, top_k)], {k: v for k, v in grounded.items() if v is not None}

    def ground_remembered(self, entry_id: int, encoded: EncodedInstruction) -> GroundingResult | None:
        """The instruction grounded in a remembered frame; None when its picture is gone."""
        picture = self.remembered_picture(entry_id)
        return None if picture is None else self.engine.ground(self.engine.encode_frame(picture), encoded)

    def remembered_picture(self, entry_id: int, without: str = "is ranked by its embedding alone") -> np.ndarray | None:
        """A remembered frame's picture; None when it was dropped from the memory, or (reported, with
        what the caller does ``without`` it) when it does not decode within ``max_image_pixels``.
        Either way the frame keeps its embedding."""
        payload = self.memory.payload(entry_id)
        if payload is None:
            return None
        try:
            return decode_image(payload, self.params.max_image_pixels)
        except ValueError as error:
            self.report_error(f"remembered frame {entry_id} {without}: {error}")
            return None

    def on_frame(self, rgb: np.ndarray, header: Header, frame: ImageEmbeddings, waited_s: float, decode_ms: float,
                 vision_ms: float, camera: Camera | None = None, depth: DepthView | None = None) -> None:
        vector = self.engine.frame_vector(frame)
        stamp = stamp_ns(header.stamp)
        if self.memory is not None:
            self.memory.consider(vector, stamp_ns=stamp, name=header.frame_id, payload=lambda: encode_jpeg(rgb))
        if not self.params.continuous:
            return
        matching = []
        for active in self.active_instructions():
            encoded = self.encoded(active)
            if encoded is None:
                continue
            score = float(vector @ self.engine.instruction_vector(encoded))
            if score >= self.params.continuous_threshold:
                matching.append((active, encoded, score))
        if not matching:
            return
        for (active, _, score), grounded in zip(matching, self.engine.ground_all(frame, [e for _, e, _ in matching])):
            best_frame = grounding_msg(header, active.msg.id, grounded, depth=depth)
            self._localization_pub.publish(localization_msg(header, active.msg.id, [(stamp, score, header.frame_id)],
                                                            best_frame, live=True))

    def status_values(self) -> dict[str, Any]:
        values = super().status_values()
        if self.memory is not None:
            values["memory_entries"] = len(self.memory)
            values["memory_index"] = self.memory.index_kind  # exact scan, or the faiss index past exact_limit
        return values

    def lookup_frame(self, stamp: int) -> np.ndarray | None:
        from find_ros.nodes.base import REGION_STAMP_TOLERANCE_NS

        if self.memory is None:
            return None
        entry_id = self.memory.nearest_in_time(stamp, REGION_STAMP_TOLERANCE_NS)
        return None if entry_id is None else self.remembered_picture(entry_id, "cannot give a frame region its pixels")


def main(args: list[str] | None = None) -> None:
    """Entry point `localization_node`: waits unconfigured unless the `autostart` parameter is true
    (find_ros.nodes.runner); on a robot it uses the machine's normal DDS settings."""
    from find_ros.nodes.runner import spin_nodes

    spin_nodes([LocalizationNode], args=args)
