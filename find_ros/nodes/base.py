"""What every find_ros perception node does, so each node only says what it does with a frame.

Lifecycle (yolo_ros style): configure creates publishers, the instruction subscriptions, the
cancel service and timers; activate loads the model and subscribes to the camera; deactivate
unsubscribes and frees the model. The lifecycle services live in a reentrant callback group of their
own, so on a multi-threaded executor ``get_state`` answers ("activating") while ``on_activate`` loads
the model on another thread, and a model that fails to load still fails the transition. ``~/ready``
(std_msgs/Bool, latched) says whether the model is loaded and frames are taken.

Instructions may arrive in any state after configure. Each is checked at once
(find_ros.nodes.admission) and kept within the flood policy (find_ros.nodes.instruction_book); the
decision (accepted, or refused with the reason) is published on the instruction status topic, and
refusals on /diagnostics too. A kept instruction is encoded by the worker once, then reused on every
frame; if that fails, the failure is published naming the instruction. Instructions are cancelled by
id or all at once, on the topic (Instruction.action) or through ~/cancel_instruction.

Frames go through a depth-1 latest-wins slot per camera to one worker thread that serves the cameras
in turn (find_ros.nodes.latest_frame), so inference never runs on the callback thread, the lag never
grows and no camera starves another; one model serves them all. Each camera's colour frames are paired
by stamp with its aligned depth and CameraInfo (find_ros.nodes.depth_sync) so results can carry 3D
positions; a frame without matching depth is answered in 2D. Recent frames are kept (JPEG, bounded) so a visual entity
given as "this box in the frame at stamp t" can be cut out of that frame. Bad input is logged,
reported on /diagnostics, and the node keeps serving.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from lifecycle_msgs.msg import State as StateMsg
from lifecycle_msgs.msg import TransitionEvent
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleNodeMixin, State, TransitionCallbackReturn
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Bool

from find_ros.nodes import diagnostics
from find_ros.nodes.admission import Admitted, check_instruction
from find_ros.nodes.any_durability import subscribe_any_durability
from find_ros.nodes.cameras import Camera, cameras_of
from find_ros.nodes.depth_sync import DepthSync, SyncedFrame
from find_ros.image_header import ImageTooLarge
from find_ros.nodes.images import compressed_msg_to_rgb, image_msg_to_rgb, image_to_numpy
from find_ros.nodes.instruction_book import FLOOD_POLICY, InstructionBook
from find_ros.nodes.instruction_msgs import status_msg
from find_ros.nodes.latest_frame import LatestFrameWorker
from find_ros.nodes.params import declare
from find_ros.nodes.qos import INSTRUCTION_STATUS, READY, image_qos_for
from find_ros.nodes.recent_frames import RecentFrames
from find_ros.position3d import CameraMatrix, DepthView, check_aligned, depth_in_metres

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
    visuals: list[np.ndarray]  # one RGB crop per visual entity (frame regions are cut on arrival)
    encoded: EncodedInstruction | None = None


@dataclass
class Counters:
    frames_bad: int = 0
    frames_too_large: int = 0
    depth_bad: int = 0  # depth or CameraInfo that could not be used (frame answered in 2D)
    instructions_rejected: int = 0
    last_error: str = ""
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=200))


def sender_of(info: Any) -> str | None:
    """The DDS writer a topic message came from (its publisher GID, hex), or None if unknown."""
    gid = (info or {}).get("publisher_gid") if isinstance(info, dict) else None
    data = gid.get("data") if isinstance(gid, dict) else None
    return bytes(data).hex() if data else None


def stamp_ns(stamp: Time) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class PerceptionNode(LifecycleNodeMixin, Node):
    """Base of the grounding and localization nodes; subclasses implement the hooks below."""

    params_type: type = object
    recent_frames: int = 30  # frames kept for resolving frame-region entities
    recent_frames_bytes: int = 64 << 20  # ... and the most pixel bytes they may hold together

    # --- hooks for subclasses -----------------------------------------------------------------
    def wants(self, msg: Instruction) -> bool:
        """Whether this node keeps the instruction (e.g. want_grounding)."""
        raise NotImplementedError

    def on_frame(self, rgb: np.ndarray, header: Header, frame: ImageEmbeddings, waited_s: float, decode_ms: float,
                 vision_ms: float, camera: Camera | None = None, depth: DepthView | None = None) -> None:
        """Do this node's work on one encoded frame of ``camera``; ``depth`` when the frame's
        aligned depth and CameraInfo came with it."""
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
        self.cameras = cameras_of(self.params)
        self._camera_subs: list[Any] = []
        self._syncs: dict[str, DepthSync] = {}  # camera name -> its depth pairing
        self._sync_timer: Any = None
        self._instruction_subs: list[Any] = []
        self._timer: Any = None
        self._diag_pub: Any = None
        self._status_pub: Any = None
        self._cancel_service: Any = None
        self.instructions: InstructionBook[ActiveInstruction] = InstructionBook(
            self.params.max_instructions, self.params.max_instructions_per_sender)
        self.counters = Counters()
        self._recent = RecentFrames(self.recent_frames, self.recent_frames_bytes)
        self._budget: Any = None
        self._budget_lock = threading.Lock()

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        from diagnostic_msgs.msg import DiagnosticArray
        from find_ros_msgs.msg import Instruction, InstructionStatus
        from find_ros_msgs.srv import CancelInstruction

        # Diagnostics and instruction answers are published in every state: a rejected instruction
        # is worth knowing about while the node is still inactive.
        self._diag_pub = self.create_publisher(DiagnosticArray, diagnostics.TOPIC, 10)
        self._status_pub = self.create_publisher(InstructionStatus, self.params.instruction_status_topic, INSTRUCTION_STATUS)
        self._instruction_subs = subscribe_any_durability(self, Instruction, self.params.instruction_topic, self._on_instruction)
        self._cancel_service = self.create_service(CancelInstruction, "~/cancel_instruction", self._on_cancel)
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
        for camera in self.cameras:
            self._subscribe_camera(camera)
        wait_s = self.params.depth_wait_s
        self._sync_timer = self.create_timer(max(wait_s / 2, 0.02), self._release_stale_frames)
        return super().on_activate(state)

    def _subscribe_camera(self, camera: Camera) -> None:
        """The camera's colour (and, for 3D, depth and CameraInfo) subscriptions, through its DepthSync."""
        p, worker = self.params, self._worker
        sync = DepthSync(lambda synced: worker.put((camera, synced), key=camera.name),
                         int(p.depth_sync_tolerance_s * 1e9), wait_s=p.depth_wait_s)
        self._syncs[camera.name] = sync
        compressed = p.image_transport == "compressed"
        topic, msg_type = (f"{camera.image_topic}/compressed", CompressedImage) if compressed else (camera.image_topic, Image)
        subs = [self.create_subscription(msg_type, topic, lambda msg: self._on_image(msg, camera),
                                         image_qos_for(self, topic, p.image_reliability))]
        if camera.depth_topic:
            subs.append(self.create_subscription(Image, camera.depth_topic, sync.on_depth,
                                                 image_qos_for(self, camera.depth_topic, p.image_reliability)))
            subs.append(self.create_subscription(CameraInfo, camera.info_topic, sync.on_info,
                                                 image_qos_for(self, camera.info_topic, p.image_reliability)))
        self._camera_subs.extend(subs)

    def _on_image(self, msg: Image | CompressedImage, camera: Camera | None = None) -> None:
        camera = camera or self.cameras[0]
        sync = self._syncs.get(camera.name)
        if sync is not None:
            # Wait for depth only where someone publishes it; a camera without depth is answered at once.
            sync.on_colour(msg, bool(camera.depth_topic) and self.count_publishers(camera.depth_topic) > 0)

    def _release_stale_frames(self) -> None:
        for sync in tuple(self._syncs.values()):
            sync.release_stale()

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._release_model()
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._release_model()
        self._recent.clear()  # kept across deactivate, so regions of frames seen before still resolve
        for subscription in self._instruction_subs:
            self.destroy_subscription(subscription)
        self._instruction_subs = []
        self.destroy_service(self._cancel_service)
        self.destroy_timer(self._timer)
        self.destroy_publisher(self._diag_pub)
        self.destroy_publisher(self._status_pub)
        self._diag_pub = self._status_pub = None
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
        for subscription in self._camera_subs:
            self.destroy_subscription(subscription)
        self._camera_subs = []
        if self._sync_timer is not None:
            self.destroy_timer(self._sync_timer)
            self._sync_timer = None
        self._syncs = {}  # frames still waiting for depth go with the worker
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        for active in self.instructions.values():  # encodings belong to the model that made them
            active.encoded = None

    # --- instructions -------------------------------------------------------------------------
    def accept(self, msg: Instruction, sender: str | None = None) -> tuple[bool, str]:
        """Act on an Instruction (set, cancel, cancel all) and publish the decision on the status
        topic. Returns (accepted, reason/summary) for the service's answer."""
        from find_ros_msgs.msg import Instruction, InstructionStatus

        if msg.action in (Instruction.ACTION_CANCEL, Instruction.ACTION_CANCEL_ALL):
            cancelled, reason, _ = self.cancel(None if msg.action == Instruction.ACTION_CANCEL_ALL else msg.id)
            return cancelled, reason
        if msg.action != Instruction.ACTION_SET:
            return self._refuse(msg.id, f"unknown action {msg.action}")
        if not self.wants(msg):
            if self.instructions.cancel(msg.id):  # re-sent without this node's want_*: it stops here
                self.publish_status(msg.id, InstructionStatus.CANCELLED, "re-sent without anything for this node to do")
                return True, "cancelled: re-sent without anything for this node to do"
            return True, "nothing for this node to do"
        room = self.instructions.room_for(msg.id, sender)  # refuse a flood before any real work
        if room is not None:
            return self._refuse(msg.id, room)
        try:
            admitted = self.check(msg)
        except ValueError as error:
            return self._refuse(msg.id, str(error))
        refusal = self.instructions.admit(msg.id, sender, ActiveInstruction(msg, admitted.parsed, admitted.crops))
        if refusal is not None:
            return self._refuse(msg.id, refusal)
        summary = "entities: " + ", ".join(e.label for e in admitted.parsed.entities)
        self.publish_status(msg.id, InstructionStatus.ACCEPTED, summary)
        return True, summary

    def check(self, msg: Instruction) -> Admitted:
        """Every accept-time check of find_ros.nodes.admission, with this node's limits and frames."""
        return check_instruction(msg, max_pixels=self.params.max_image_pixels, budget=self.text_budget(),
                                 frame_at=self.lookup_frame)

    def text_budget(self) -> Any | None:
        """The model's token budget, read once from its directory (tokenizer only, no weights)."""
        with self._budget_lock:
            if self._budget is None:
                from find_ros.model import resolve_model_dir
                from find_ros.model.text_budget import TextBudget

                try:
                    self._budget = TextBudget.of_model_dir(resolve_model_dir(self.params.model or None))
                except (OSError, ValueError) as error:
                    # The model cannot be read yet (activation will say why); its encoder checks the length.
                    self.get_logger().warning(f"token length not checked on arrival: {error}")
                    return None
            return self._budget

    def cancel(self, instruction_id: str | None) -> tuple[bool, str, list[str]]:
        """Cancel one instruction, or all with None; each is acknowledged on the status topic.
        Returns (success, message, the ids cancelled)."""
        from find_ros_msgs.msg import InstructionStatus

        if instruction_id is None:
            ids = self.instructions.cancel_all()
            for cancelled in ids:
                self.publish_status(cancelled, InstructionStatus.CANCELLED, "cancel all")
            if not ids:
                self.publish_status("", InstructionStatus.CANCELLED, "cancel all: no instruction was active")
            return True, f"cancelled {len(ids)} instruction(s)", ids
        if self.instructions.cancel(instruction_id):
            self.publish_status(instruction_id, InstructionStatus.CANCELLED, "cancelled on request")
            return True, f"cancelled {instruction_id[:64]!r}", [instruction_id]
        reason = f"no active instruction {instruction_id[:64]!r} to cancel"
        self.publish_status(instruction_id, InstructionStatus.REFUSED, reason)
        return False, reason, []

    def _refuse(self, instruction_id: str, reason: str) -> tuple[bool, str]:
        from find_ros_msgs.msg import InstructionStatus

        self.counters.instructions_rejected += 1
        text = f"instruction {instruction_id[:64]!r} rejected: {reason}"
        self.report_error(text)
        self.publish_status(instruction_id, InstructionStatus.REFUSED, reason)
        return False, text

    def publish_status(self, instruction_id: str, status: int, reason: str) -> None:
        if self._status_pub is not None:
            self._status_pub.publish(status_msg(self, instruction_id, status, reason))

    def _on_instruction(self, msg: Instruction, info: Any) -> None:
        self.accept(msg, sender_of(info))

    def _on_cancel(self, request: Any, response: Any) -> Any:
        response.success, response.message, response.cancelled = self.cancel(None if request.all else request.id)
        return response

    def encoded(self, active: ActiveInstruction) -> EncodedInstruction | None:
        """The instruction's embeddings, computed once; None (and the instruction dropped, the
        failure published with its id) if the model refuses it."""
        if active.encoded is None:
            try:
                active.encoded = self.engine.encode_instruction(active.parsed, active.visuals)
            except ValueError as error:
                self.drop_instruction(active, str(error))
                return None
            self.on_new_instruction(active)
        return active.encoded

    def lookup_frame(self, stamp: int) -> np.ndarray | None:
        """The recent frame closest to ``stamp`` within tolerance; subclasses may look further back."""
        return self._recent.nearest(stamp, REGION_STAMP_TOLERANCE_NS)

    def drop_instruction(self, active: ActiveInstruction, reason: str) -> None:
        from find_ros_msgs.msg import InstructionStatus

        self.instructions.remove(active.msg.id, only=active)  # not a newer instruction re-sent with this id
        self.counters.instructions_rejected += 1
        self.report_error(f"instruction {active.msg.id[:64]!r} dropped: {reason}")
        self.publish_status(active.msg.id, InstructionStatus.FAILED, reason)

    def active_instructions(self) -> list[ActiveInstruction]:
        return self.instructions.values()

    # --- frames -------------------------------------------------------------------------------
    def _process(self, item: tuple[Camera, SyncedFrame], waited_s: float) -> None:
        camera, synced = item
        msg = synced.image
        if self.engine is None:
            return
        t0 = time.perf_counter()
        limit = self.params.max_image_pixels  # checked from the header, before any pixel is decoded
        rgb = compressed_msg_to_rgb(msg, limit) if isinstance(msg, CompressedImage) else image_msg_to_rgb(msg, limit)
        depth = self._depth_view(synced, rgb.shape) if synced.depth is not None else None
        self._recent.add(stamp_ns(msg.header.stamp), rgb)
        t1 = time.perf_counter()
        frame = self.engine.encode_frame(rgb)
        t2 = time.perf_counter()
        self.on_frame(rgb, msg.header, frame, waited_s, (t1 - t0) * 1e3, (t2 - t1) * 1e3, camera=camera, depth=depth)
        self.counters.latencies_ms.append((time.monotonic() - synced.received_at) * 1e3)

    def _depth_view(self, synced: SyncedFrame, shape: tuple[int, ...]) -> DepthView | None:
        """The frame's depth in metres with its camera matrix; None (frame answered in 2D, the reason
        reported) when they cannot describe this colour frame."""
        try:
            if synced.info is None:
                raise ValueError("no CameraInfo received yet")
            camera = CameraMatrix.from_k(synced.info.k, synced.info.width, synced.info.height)
            raw = image_to_numpy(synced.depth, self.params.max_image_pixels)
            metres = depth_in_metres(raw, synced.depth.encoding)
            check_aligned(shape, metres.shape, camera)
        except ValueError as error:
            self.counters.depth_bad += 1
            self.report_error(f"frame answered in 2D: {error}")
            return None
        return DepthView(metres, camera)

    def _on_frame_error(self, item: tuple[Camera, SyncedFrame], error: BaseException) -> None:
        self.counters.frames_bad += 1
        if isinstance(error, ImageTooLarge):
            self.counters.frames_too_large += 1
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
            "frames_too_large": self.counters.frames_too_large,
            "frames_with_depth": sum(s.stats.with_depth for s in self._syncs.values()),
            "frames_without_depth": sum(s.stats.without_depth for s in self._syncs.values()),
            "depth_bad": self.counters.depth_bad,
            "max_image_pixels": self.params.max_image_pixels,
            "instructions_active": len(self.instructions),
            "instructions_max": self.instructions.capacity,
            "instructions_per_sender_max": self.instructions.per_sender,
            "flood_policy": FLOOD_POLICY,
            "instructions_rejected": self.counters.instructions_rejected,
            "instructions_refused_full": self.instructions.stats.refused_full,
            "instructions_refused_sender": self.instructions.stats.refused_sender,
            "instructions_cancelled": self.instructions.stats.cancelled,
            "latency_ms_median": f"{latencies[len(latencies) // 2]:.1f}" if latencies else "",
            "last_error": self.counters.last_error,
            **self._camera_values(),
        }

    def _camera_values(self) -> dict[str, Any]:
        """Per-camera counters, ``<namespace>.frames_processed`` etc., when several cameras are served."""
        if not self.params.cameras:
            return {}
        worker = self._worker
        values: dict[str, Any] = {}
        for camera in self.cameras:
            stats = worker.key_stats.get(camera.name) if worker is not None else None
            sync = self._syncs.get(camera.name)
            values.update({
                f"{camera.name}.frames_received": stats.received if stats else 0,
                f"{camera.name}.frames_processed": stats.processed if stats else 0,
                f"{camera.name}.frames_dropped": stats.dropped if stats else 0,
                f"{camera.name}.frames_with_depth": sync.stats.with_depth if sync else 0,
            })
        return values

    def _publish_status(self) -> None:
        self._diag_pub.publish(diagnostics.diagnostic_array(self, diagnostics.OK, "running", self.status_values()))
