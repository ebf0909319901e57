"""Video localization node: which remembered frames show what an instruction describes.

Every processed frame is encoded once; keyframes (by time or by change of view) go into a bounded
EmbeddingMemory with a JPEG copy of the frame. An instruction with want_localization (topic) or a
Localize request (service) is answered with the top-K frames and the entities grounded in the best
one: the ``rerank_candidates`` frames nearest by FIND's image and instruction embeddings are
re-scored by grounding the instruction in each (its entities' match logits), which finds a small
object that a whole-frame embedding hardly shows. In continuous mode, each
live frame is scored against the active instructions and a Localization with ``live = true`` is
published when it matches. Visual entities given as frame regions are cut from remembered frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from find_ros.memory import EmbeddingMemory, MemorySettings
from find_ros.nodes.base import ActiveInstruction, PerceptionNode, decode_jpeg, encode_jpeg, stamp_ns
from find_ros.nodes.latest_frame import LatestFrameWorker
from find_ros.nodes.params import LocalizationParams

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
    def wants(self, msg: Any) -> bool:
        return bool(msg.want_localization)

    def accept(self, msg: Any, sender: str | None = None) -> tuple[bool, str]:
        accepted, reason = super().accept(msg, sender)
        if accepted and msg.want_localization and self._queries is not None and self.instructions.get(msg.id):
            self._queries.put(msg.id)  # answered on the query thread, also when no frames arrive
        return accepted, reason

    def _on_localize(self, request: Any, response: Any) -> Any:
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
    def localize(self, active: ActiveInstruction, top_k: int) -> Any:
        """A Localization message: the best frames for the instruction, grounded in the best one."""
        from find_ros_msgs.msg import FrameMatch, Localization

        if self.engine is None or self.memory is None:
            raise ValueError("the node is not active")
        encoded = self.encoded(active)
        if encoded is None:
            raise ValueError(self.counters.last_error)
        result = Localization()
        result.header.stamp = self.get_clock().now().to_msg()
        result.header.frame_id = active.msg.header.frame_id
        result.instruction_id = active.msg.id
        grounded: dict[int, tuple[np.ndarray, list[Any]]] = {}

        def ground_remembered(match: Any) -> float | None:
            """How well the instruction's entities are seen in a remembered frame: the mean of their
            grounding match logits. A small object barely moves a whole-frame embedding, but its
            own proposal matches it sharply (localization hits in MODEL_CARD.md)."""
            payload = self.memory.payload(match.entry_id)
            if payload is None:
                return None
            rgb = decode_jpeg(payload)
            outcomes = self.engine.ground(self.engine.encode_frame(rgb), encoded)
            grounded[match.entry_id] = (rgb, outcomes)
            return float(np.mean([o.match for o in outcomes])) if outcomes else None

        matches = self.memory.search_reranked(self.engine.instruction_vector(encoded), top_k,
                                              self.params.rerank_candidates, ground_remembered)
        for match in matches:
            fm = FrameMatch(score=match.score)
            fm.stamp.sec, fm.stamp.nanosec = divmod(match.stamp_ns, 1_000_000_000)
            result.matches.append(fm)
        if matches:
            if matches[0].entry_id not in grounded:  # re-ranking off, or it could not judge the best
                ground_remembered(matches[0])
            best = grounded.get(matches[0].entry_id)
            if best is not None:
                header = result.header.__class__()
                header.stamp = result.matches[0].stamp
                header.frame_id = result.header.frame_id
                result.best_frame = self.engine.grounding_msg(header, active.msg.id, best[0].shape[:2], best[1], self.params)
        return result

    def on_frame(self, rgb: np.ndarray, header: Any, frame: Any, waited_s: float, decode_ms: float, vision_ms: float) -> None:
        vector = self.engine.frame_vector(frame)
        stamp = stamp_ns(header.stamp)
        if self.memory is not None:
            self.memory.consider(vector, stamp_ns=stamp, name=header.frame_id, payload=lambda: encode_jpeg(rgb))
        if not self.params.continuous:
            return
        for active in self.active_instructions():
            encoded = self.encoded(active)
            if encoded is None:
                continue
            score = float(vector @ self.engine.instruction_vector(encoded))
            if score < self.params.continuous_threshold:
                continue
            from find_ros_msgs.msg import FrameMatch, Localization

            live = Localization(instruction_id=active.msg.id, live=True)
            live.header = header
            live.matches = [FrameMatch(stamp=header.stamp, score=score)]
            live.best_frame = self.engine.grounding_msg(header, active.msg.id, rgb.shape[:2], self.engine.ground(frame, encoded), self.params)
            self._localization_pub.publish(live)

    def lookup_frame(self, stamp: int) -> np.ndarray | None:
        from find_ros.nodes.base import REGION_STAMP_TOLERANCE_NS

        if self.memory is None:
            return None
        entry_id = self.memory.nearest_in_time(stamp, REGION_STAMP_TOLERANCE_NS)
        payload = None if entry_id is None else self.memory.payload(entry_id)
        return None if payload is None else decode_jpeg(payload)


def main(args: list[str] | None = None) -> None:
    """Entry point `localization_node`; on a robot it uses the machine's normal DDS settings."""
    from find_ros.nodes.runner import spin_nodes

    spin_nodes([LocalizationNode], args=args)
