"""What every find_ros perception node does, so each node only says what it does with a frame.

Lifecycle (yolo_ros style): configure creates publishers, the instruction subscription and timers;
activate loads the model and subscribes to the camera; deactivate unsubscribes and frees the model.
The lifecycle services live in a reentrant callback group of their own, so on a multi-threaded
executor ``get_state`` answers ("activating") while ``on_activate`` loads the model on another
thread, and a model that fails to load still fails the transition. ``~/ready`` (std_msgs/Bool,
latched) says whether the model is loaded and frames are taken. Instructions may arrive in any state
after configure; they are checked at once (a bad one is rejected with the reason on /diagnostics)
and encoded by the worker once, then reused on every frame.

Frames go through a depth-1 latest-wins slot to one worker thread, so inference never runs on the
callback thread and the lag never grows. Recent frames are kept (JPEG, bounded) so a visual entity
given as "this box in the frame at stamp t" can be cut out of that frame. Bad input is logged,
reported on /diagnostics, and the node keeps serving.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from lifecycle_msgs.msg import State as StateMsg
from lifecycle_msgs.msg import TransitionEvent
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleNodeMixin, State, TransitionCallbackReturn
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Bool

from find_ros.image_io import decode_image, encode_jpeg
from find_ros.nodes import diagnostics
from find_ros.nodes.any_durability import subscribe_any_durability
from find_ros.nodes.images import compressed_msg_to_rgb, image_msg_to_rgb
from find_ros.nodes.instruction_msgs import FrameRegion, read_instruction
from find_ros.nodes.latest_frame import LatestFrameWorker
from find_ros.nodes.params import declare
from find_ros.nodes.qos import READY, image_qos_for

if TYPE_CHECKING:
    from builtin_interfaces.msg import Time
    from find_ros_msgs.msg import Instruction
    from std_msgs.msg import Header

    from find_ros.instructions import ParsedInstruction
    from find_ros.model import ImageEmbeddings
    from find_ros.nodes.engine import EncodedInstruction, PerceptionEngine

# Frames whose stamp is within this of a region's stamp count as "that frame".
REGION_STAMP_TOLERANCE_NS = 20_000_000


@dataclass
class ActiveInstruction:
    """An instruction that passed the checks; ``encoded`` is filled by the worker on first use."""

    msg: Instruction
    parsed: ParsedInstruction
    visuals: list[np.ndarray | FrameRegion]
    encoded: EncodedInstruction | None = None


@dataclass
class Counters:
    frames_bad: int = 0
    instructions_rejected: int = 0
    last_error: str = ""
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=200))


def stamp_ns(stamp: Time) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class PerceptionNode(LifecycleNodeMixin, Node):
    """Base of the grounding and localization nodes; subclasses implement the hooks below."""

    params_type: type = object
    recent_frames: int = 30  # frames kept for resolving frame-region entities

    # --- hooks for subclasses -----------------------------------------------------------------
    def wants(self, msg: Instruction) -> bool:
        """Whether this node keeps the instruction (e.g. want_grounding)."""
        raise NotImplementedError

    def on_frame(self, rgb: np.ndarray, header: Header, frame: ImageEmbeddings, waited_s: float, decode_ms: float,
                 vision_ms: float) -> None:
        """Do this node's work on one encoded frame."""
        raise NotImplementedError

    def on_new_instruction(self, active: ActiveInstruction) -> None:
        """Called on the worker thread after an instruction was encoded for the first time."""

    def create_outputs(self) -> None:
        """Create this node's publishers/services (called in on_configure)."""

    def destroy_outputs(self) -> None:
        """Destroy what create_outputs made (called in on_cleanup)."""

    # --- setup --------------------------------------------------------------------------------
    def __init__(self, name: str, **kwargs: Any) -> None:
        Node.__init__(self, name, **kwargs)
        # rclpy's LifecycleNode puts the lifecycle services in the node's default (mutually
        # exclusive) group, where get_state would wait for a slow on_activate to finish.
        LifecycleNodeMixin.__init__(self, callback_group=ReentrantCallbackGroup())
        self.params = declare(self, self.params_type)
        self._ready_pub = self.create_publisher(Bool, "~/ready", READY)
        self._ready: bool | None = None
        self._ready_lock = threading.Lock()  # transitions and the executor both set it
        self._set_ready(False)
        # Ready turns true on the lifecycle's own event that the node reached "active", so it never
        # runs ahead of get_state; it turns false as soon as deactivation starts (_release_model).
        self.create_subscription(TransitionEvent, "~/transition_event", self._on_transition_event, 10)
        self.engine: PerceptionEngine | None = None
        self._worker: LatestFrameWorker | None = None
        self._image_sub: Any = None
        self._instruction_subs: list[Any] = []
        self._timer: Any = None
        self._diag_pub: Any = None
        self.instructions: OrderedDict[str, ActiveInstruction] = OrderedDict()
        self.lock = threading.Lock()
        self.counters = Counters()
        self._recent: deque[tuple[int, bytes]] = deque(maxlen=self.recent_frames)

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        from diagnostic_msgs.msg import DiagnosticArray
        from find_ros_msgs.msg import Instruction

        # Diagnostics are published in every state: a rejected instruction is worth knowing about
        # while the node is still inactive.
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._instruction_subs = subscribe_any_durability(self, Instruction, self.params.instruction_topic, self._on_instruction)
        self._timer = self.create_timer(self.params.diagnostics_period_s, self._publish_status)
        self.create_outputs()
        return TransitionCallbackReturn.SUCCESS

    def load_engine(self) -> Any:
        """The model for this node's parameters; runs on the transition's thread, not the executor's."""
        from find_ros.nodes.engine import PerceptionEngine

        return PerceptionEngine(self.params)

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        try:
            self.engine = self.load_engine()
        except Exception as error:  # noqa: BLE001 - a bad model must fail the transition, not the process
            self.report_error(f"model failed to load: {error}")
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f"model {self.engine.model_name} on {self.engine.device}")
        self._worker = LatestFrameWorker(self._process, self._on_frame_error, name=f"{self.get_name()}_worker")
        p = self.params
        topic, msg_type = (f"{p.image_topic}/compressed", CompressedImage) if p.image_transport == "compressed" else (p.image_topic, Image)
        self._image_sub = self.create_subscription(msg_type, topic, self._on_image, image_qos_for(self, topic))
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._release_model()
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._release_model()
        for subscription in self._instruction_subs:
            self.destroy_subscription(subscription)
        self._instruction_subs = []
        self.destroy_timer(self._timer)
        self.destroy_publisher(self._diag_pub)
        self.destroy_outputs()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self._release_model()
        return TransitionCallbackReturn.SUCCESS

    def lifecycle_state(self) -> str:
        """The lifecycle state's label: unconfigured, inactive, activating, active, ..."""
        return self._state_machine.current_state[1]

    def _set_ready(self, ready: bool) -> None:
        with self._ready_lock:
            if ready != self._ready:
                self._ready = ready
                self._ready_pub.publish(Bool(data=ready))

    def _on_transition_event(self, event: Any) -> None:
        self._set_ready(event.goal_state.id == StateMsg.PRIMARY_STATE_ACTIVE and self.engine is not None)

    def _release_model(self) -> None:
        self._set_ready(False)
        if self._image_sub is not None:
            self.destroy_subscription(self._image_sub)
            self._image_sub = None
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        with self.lock:  # encodings belong to the model that made them
            for active in self.instructions.values():
                active.encoded = None

    # --- instructions -------------------------------------------------------------------------
    def accept(self, msg: Instruction) -> tuple[bool, str]:
        """Check an instruction and keep it if this node wants it. Returns (accepted, reason/summary)."""
        try:
            parsed, visuals = read_instruction(msg)
        except ValueError as error:
            self.counters.instructions_rejected += 1
            reason = f"instruction {msg.id[:64]!r} rejected: {error}"
            self.report_error(reason)
            return False, reason
        if not self.wants(msg):
            return True, "nothing for this node to do"
        with self.lock:
            self.instructions.pop(msg.id, None)
            self.instructions[msg.id] = ActiveInstruction(msg, parsed, visuals)
            while len(self.instructions) > self.params.max_instructions:
                dropped, _ = self.instructions.popitem(last=False)
                self.get_logger().warning(f"more than {self.params.max_instructions} instructions; dropped {dropped!r}")
        return True, "entities: " + ", ".join(e.label for e in parsed.entities)

    def _on_instruction(self, msg: Instruction) -> None:
        self.accept(msg)

    def encoded(self, active: ActiveInstruction) -> EncodedInstruction | None:
        """The instruction's embeddings, computed once; None (and the instruction dropped) if it fails."""
        if active.encoded is None:
            try:
                visuals = [self.resolve_region(v) if isinstance(v, FrameRegion) else v for v in active.visuals]
                active.encoded = self.engine.encode_instruction(active.parsed, visuals)
            except ValueError as error:
                self.drop_instruction(active, str(error))
                return None
            self.on_new_instruction(active)
        return active.encoded

    def resolve_region(self, region: FrameRegion) -> np.ndarray:
        """The pixels of a frame region, cut from a remembered frame."""
        frame = self.lookup_frame(region.stamp_ns)
        if frame is None:
            raise ValueError(f"no remembered frame at stamp {region.stamp_ns} ns")
        x0, y0, x1, y1 = region.box
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"region {region.box} lies outside the {w}x{h} frame")
        return frame[y0:y1, x0:x1].copy()

    def lookup_frame(self, stamp: int) -> np.ndarray | None:
        """The recent frame closest to ``stamp`` within tolerance; subclasses may look further back."""
        best = min(self._recent, key=lambda item: abs(item[0] - stamp), default=None)
        if best is None or abs(best[0] - stamp) > REGION_STAMP_TOLERANCE_NS:
            return None
        return decode_image(best[1])

    def drop_instruction(self, active: ActiveInstruction, reason: str) -> None:
        with self.lock:
            self.instructions.pop(active.msg.id, None)
        self.counters.instructions_rejected += 1
        self.report_error(f"instruction {active.msg.id[:64]!r} dropped: {reason}")

    def active_instructions(self) -> list[ActiveInstruction]:
        with self.lock:
            return list(self.instructions.values())

    # --- frames -------------------------------------------------------------------------------
    def _on_image(self, msg: Image | CompressedImage) -> None:
        worker = self._worker
        if worker is not None:
            worker.put((msg, time.monotonic()))

    def _process(self, item: tuple[Image | CompressedImage, float], waited_s: float) -> None:
        msg, received_at = item
        if self.engine is None:
            return
        t0 = time.perf_counter()
        rgb = compressed_msg_to_rgb(msg) if isinstance(msg, CompressedImage) else image_msg_to_rgb(msg)
        if self.recent_frames:
            self._recent.append((stamp_ns(msg.header.stamp), encode_jpeg(rgb)))
        t1 = time.perf_counter()
        frame = self.engine.encode_frame(rgb)
        t2 = time.perf_counter()
        self.on_frame(rgb, msg.header, frame, waited_s, (t1 - t0) * 1e3, (t2 - t1) * 1e3)
        self.counters.latencies_ms.append((time.monotonic() - received_at) * 1e3)

    def _on_frame_error(self, item: tuple[Image | CompressedImage, float], error: BaseException) -> None:
        self.counters.frames_bad += 1
        self.report_error(f"frame skipped: {error}")

    # --- diagnostics --------------------------------------------------------------------------
    def report_error(self, reason: str) -> None:
        self.counters.last_error = reason[:300]
        self.get_logger().warning(reason[:500])
        if self._diag_pub is not None:
            self._diag_pub.publish(diagnostics.diagnostic_array(self, diagnostics.WARN, reason, self.status_values()))

    def status_values(self) -> dict[str, Any]:
        stats = self._worker.stats if self._worker is not None else None
        latencies = sorted(self.counters.latencies_ms)
        engine = self.engine
        return {
            "state": self.lifecycle_state(),
            "model": engine.model_name if engine is not None else "",
            "device": engine.device if engine is not None else "",
            "frames_received": stats.received if stats else 0,
            "frames_processed": stats.processed if stats else 0,
            "frames_dropped": stats.dropped if stats else 0,
            "frames_bad": self.counters.frames_bad,
            "instructions_active": len(self.instructions),
            "instructions_rejected": self.counters.instructions_rejected,
            "latency_ms_median": f"{latencies[len(latencies) // 2]:.1f}" if latencies else "",
            "last_error": self.counters.last_error,
        }

    def _publish_status(self) -> None:
        self._diag_pub.publish(diagnostics.diagnostic_array(self, diagnostics.OK, "running", self.status_values()))
