"""The grounding node in its own process, over real DDS: results per frame, bad input, lifecycle.

Counted deliveries go over reliable QoS (image_reliability: reliable) and each frame or instruction
is waited for before the next is sent, so no count depends on timing or on best-effort transport.
"""

from __future__ import annotations

import numpy as np
import pytest
from find_ros_msgs.msg import Grounding, Instruction, InstructionStatus, VisualEntity
from find_ros_msgs.srv import CancelInstruction, SetInstruction
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from find_ros.nodes import graph_client
from find_ros.nodes.bad_input import malformed_raw_frames, png_bomb
from find_ros.nodes.graph_client import resident_mb, service_name
from find_ros.nodes.images import image_msg_to_rgb, numpy_to_image_msg
from find_ros.nodes.instruction_msgs import FrameRegion, build_cancel, build_instruction
from find_ros.nodes.params import GroundingParams
from find_ros.nodes.qos import INSTRUCTION_STATUS

from .conftest import diagnostics_text, frame, wait_active

pytestmark = pytest.mark.timeout(180)

P = GroundingParams()  # the topics of a node left at its defaults
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
SET_INSTRUCTION = service_name("find_grounding", "set_instruction")
CANCEL = service_name("find_grounding", "cancel_instruction")


def _stamp_ns(header) -> int:
    return header.stamp.sec * 10**9 + header.stamp.nanosec


class Camera(graph_client.Camera):
    """The test's camera (reliable unless told): ``send_and_wait`` sends a frame and waits until the node used it."""

    def __init__(self, peer, qos=RELIABLE, compressed: bool = False) -> None:
        super().__init__(peer, P.image_topic, compressed=compressed, qos=qos)
        self.wait_for_subscriber()

    def send_and_wait(self, rgb: np.ndarray, results: list, timeout_s: float = 60.0) -> list:
        """Publish one frame and return every Grounding result for it (one per instruction).

        The node publishes a frame's results one after another on one reliable writer, so once a
        result of a second frame (the fence) is in, every result of the first is in too."""
        stamp = self.publish(rgb)
        assert self.client.spin_until(lambda: any(_stamp_ns(r.header) == stamp for r in results), timeout_s), "no result"
        fence = self.publish(rgb)
        assert self.client.spin_until(lambda: any(_stamp_ns(r.header) == fence for r in results), timeout_s), "no result"
        return [r for r in results if _stamp_ns(r.header) == stamp]


class Answers:
    """InstructionStatus messages from the grounding node; ``after`` waits for the one about an id."""

    def __init__(self, peer) -> None:
        self.peer = peer
        self.received = peer.collect(InstructionStatus, P.instruction_status_topic, INSTRUCTION_STATUS)

    def after(self, send, instruction_id: str, timeout_s: float = 30.0) -> InstructionStatus:
        seen = len(self.received)
        send()
        mine = lambda: [s for s in self.received[seen:] if s.instruction_id == instruction_id]  # noqa: E731
        assert self.peer.spin_until(lambda: bool(mine()), timeout_s), f"no answer about {instruction_id!r}"
        return mine()[0]


def test_a_best_effort_camera_and_an_instruction_with_a_crop_get_per_frame_results(peer, perception) -> None:
    # The tiny model is uncalibrated: a presence threshold near 0 finds every entity, so each comes with a mask.
    wait_active(peer, perception("grounding", presence_threshold=1e-6))
    results = peer.collect(Grounding, P.grounding_topic)
    overlays = peer.collect(Image, P.overlay_topic, qos_profile_sensor_data)
    instructions = peer.instruction_publisher(P)
    instructions.publish(build_instruction("[the red mug] left of <0>", [frame(99, 24, 30)], instruction_id="mug"))
    camera = Camera(peer, qos_profile_sensor_data)  # best effort, as most drivers are: frames are re-sent until 3 results

    ticks = iter(range(10**6))
    assert peer.spin_until(lambda: len(results) >= 3, 90, step=lambda: next(ticks) % 4 == 0 and camera.publish(frame(len(camera.stamps))))
    for result in results:
        assert result.instruction_id == "mug"
        assert result.header.frame_id == "camera"
        assert _stamp_ns(result.header) in camera.stamps
        assert (result.image_width, result.image_height) == (80, 60)
        assert [e.label for e in result.entities] == ["the red mug", "<0>"]
        assert [e.visual_index for e in result.entities] == [-1, 0]
        for entity in result.entities:
            assert 0.0 <= entity.score <= 1.0
            assert entity.found and 1e-6 <= entity.confidence <= 1.0
            mask = image_msg_to_rgb(entity.mask)[..., 0] if entity.mask.width else None
            assert mask is not None and mask.shape == (60, 80)
            assert int((mask == 255).sum()) == entity.mask_area
        assert result.timing.vision_ms > 0 and result.timing.interface_ms > 0
    assert peer.spin_until(lambda: bool(overlays), 30, step=lambda: next(ticks) % 10 == 0 and camera.publish(frame(7)))
    assert (overlays[-1].width, overlays[-1].height) == (80, 60)


def _bad_instruction(text: str, crops: int = 0, instruction_id: str = "bad") -> Instruction:
    msg = Instruction(id=instruction_id, text=text, want_grounding=True)
    for k in range(crops):
        entity = VisualEntity(source=VisualEntity.SOURCE_CROP)
        entity.crop = numpy_to_image_msg(frame(k, 8, 8), "rgb8")
        msg.visual_entities.append(entity)
    return msg


def test_bad_input_is_rejected_with_a_reason_and_the_node_keeps_serving(peer, perception) -> None:
    wait_active(peer, perception("grounding", image_reliability="reliable", max_image_pixels=20_000))
    results = peer.collect(Grounding, P.grounding_topic)
    answers = Answers(peer)

    def ask(msg: Instruction) -> SetInstruction.Response:
        return peer.call(SetInstruction, SET_INSTRUCTION, SetInstruction.Request(instruction=msg))

    camera = Camera(peer)
    assert ask(build_instruction("[the blue box]", instruction_id="good")).accepted
    seen = camera.send_and_wait(frame(1), results)  # a frame the node remembers, for frame regions
    remembered = _stamp_ns(seen[0].header)

    cases = {
        "placeholder without crop": (_bad_instruction("the cup near <1>", crops=1), "placeholder <1> has no visual entity"),
        "huge text": (_bad_instruction("x" * 100_000), "100000 characters"),
        "empty text": (_bad_instruction("   "), "empty"),
        "too many tokens": (_bad_instruction(" ".join(["cup"] * 400)), "is 402 tokens long; the language model reads at most 32"),
        "crop over the pixel limit": (build_instruction("<0>", [frame(2, 150, 200)]), "exceeds the limit of 20000"),
        "region of a frame never seen": (build_instruction("<0>", [FrameRegion(remembered - 10**9, (0, 0, 10, 10))]),
                                         "no remembered frame at stamp"),
        "region outside the frame": (build_instruction("<0>", [FrameRegion(remembered, (500, 500, 600, 600))]),
                                     "lies outside the 80x60 frame"),
    }
    for name, (msg, reason) in cases.items():
        msg.id = name
        response = ask(msg)
        assert not response.accepted, name
        assert reason in response.message, (name, response.message)
    # The same checks on the topic path, answered on the status topic with the instruction's id.
    topic = peer.instruction_publisher(P)
    for name, (msg, reason) in cases.items():
        msg.id = f"topic: {name}"
        answer = answers.after(lambda: topic.publish(msg), msg.id)
        assert answer.status == InstructionStatus.REFUSED and reason in answer.reason, (name, answer.reason)
        assert answer.node == "find_grounding"
    # A region inside a remembered frame is accepted, and its crop cut at once.
    region = build_instruction("<0>", [FrameRegion(remembered, (10, 10, 40, 30))], instruction_id="region")
    assert ask(region).accepted

    # Accepted, then refused by the model while encoding: published as FAILED naming the instruction.
    long_crop = build_instruction("<0>", [np.zeros((1, 16385, 3), np.uint8)], instruction_id="too wide")
    answer = answers.after(lambda: topic.publish(long_crop), "too wide")
    assert answer.status == InstructionStatus.ACCEPTED
    failed = answers.after(lambda: camera.publish(frame(3)), "too wide", timeout_s=60)
    assert failed.status == InstructionStatus.FAILED and "16385x1" in failed.reason

    text = lambda: diagnostics_text(peer.diagnostics)  # noqa: E731
    too_large = numpy_to_image_msg(frame(1, 150, 200), "rgb8")  # 200x150 pixels: refused before it is copied
    bad_frames = [*malformed_raw_frames(frame(1)), ("exceeds the limit of 20000", too_large)]
    for count, (reason, msg) in enumerate(bad_frames, start=1):
        camera.publish(msg)
        assert peer.spin_until(lambda: f"frames_bad={count}" in text(), 30), text()[-2000:]
        assert reason in text()
    assert "frames_too_large=1" in text()

    # Still serving: the next good frame gets results for both kept instructions.
    assert {r.instruction_id for r in camera.send_and_wait(frame(5), results)} == {"good", "region"}
    assert all(r.image_width == 80 for r in results)


def test_a_flood_is_refused_visibly_and_never_evicts_other_clients(peer, perception) -> None:
    wait_active(peer, perception("grounding", image_reliability="reliable", max_instructions=4, max_instructions_per_sender=2))
    results = peer.collect(Grounding, P.grounding_topic)
    answers = Answers(peer)
    other = peer.instruction_publisher(P)  # another client: its own DDS writer
    assert answers.after(lambda: other.publish(build_instruction("[a chair]", instruction_id="other")), "other").status == InstructionStatus.ACCEPTED

    flood = peer.instruction_publisher(P)
    for i in range(20):
        msg = build_instruction("[a cup]", instruction_id=f"flood-{i}")
        answer = answers.after(lambda: flood.publish(msg), msg.id)
        assert answer.status == (InstructionStatus.ACCEPTED if i < 2 else InstructionStatus.REFUSED), (i, answer.reason)
    assert "max_instructions_per_sender" in answer.reason
    # The service has no sender identity: it counts only against the total, and the total is kept.
    service = lambda msg: peer.call(SetInstruction, SET_INSTRUCTION, SetInstruction.Request(instruction=msg))  # noqa: E731
    assert service(build_instruction("[a lamp]", instruction_id="service")).accepted
    full = service(build_instruction("[a bed]", instruction_id="one too many"))
    assert not full.accepted and "4 instructions are active (max_instructions)" in full.message
    # Re-sending a kept id replaces it in place, full or not.
    assert service(build_instruction("[a red chair]", instruction_id="other")).accepted

    text = lambda: diagnostics_text(peer.diagnostics[-1:])  # noqa: E731
    assert peer.spin_until(lambda: "instructions_refused_sender=18" in text() and "instructions_refused_full=1" in text(), 10)
    assert "instructions_active=4" in text() and "flood_policy=refuse new instructions when full" in text()
    # Nobody's instruction was evicted: all four are still grounded.
    camera = Camera(peer)
    assert {r.instruction_id for r in camera.send_and_wait(frame(4), results)} == {"other", "flood-0", "flood-1", "service"}
    assert next(r for r in results if r.instruction_id == "other").entities[0].label == "a red chair"


def test_instructions_are_cancelled_by_id_and_all_on_the_topic_and_the_service(peer, perception) -> None:
    wait_active(peer, perception("grounding", image_reliability="reliable"))
    results = peer.collect(Grounding, P.grounding_topic)
    answers = Answers(peer)
    topic = peer.instruction_publisher(P)
    for name in ("a", "b", "c", "d"):
        msg = build_instruction(f"[{name} thing]", instruction_id=name)
        assert answers.after(lambda: topic.publish(msg), name).status == InstructionStatus.ACCEPTED
    camera = Camera(peer)
    assert {r.instruction_id for r in camera.send_and_wait(frame(1), results)} == {"a", "b", "c", "d"}

    # By id on the topic, acknowledged on the status topic.
    answer = answers.after(lambda: topic.publish(build_cancel("a")), "a")
    assert answer.status == InstructionStatus.CANCELLED
    # Re-sent without want_grounding: this node stops it too.
    answer = answers.after(lambda: topic.publish(build_instruction("[b thing]", instruction_id="b", want_grounding=False)), "b")
    assert answer.status == InstructionStatus.CANCELLED
    assert {r.instruction_id for r in camera.send_and_wait(frame(2), results)} == {"c", "d"}

    # By id through the service; an unknown id is answered with success false.
    response = peer.call(CancelInstruction, CANCEL, CancelInstruction.Request(id="c"))
    assert response.success and list(response.cancelled) == ["c"]
    response = peer.call(CancelInstruction, CANCEL, CancelInstruction.Request(id="never sent"))
    assert not response.success and "no active instruction" in response.message
    assert {r.instruction_id for r in camera.send_and_wait(frame(3), results)} == {"d"}

    # All, on the topic and through the service.
    assert answers.after(lambda: topic.publish(build_cancel(None)), "d").status == InstructionStatus.CANCELLED
    assert answers.after(lambda: topic.publish(build_instruction("[e thing]", instruction_id="e")), "e").status == InstructionStatus.ACCEPTED
    response = peer.call(CancelInstruction, CANCEL, CancelInstruction.Request(all=True))
    assert response.success and list(response.cancelled) == ["e"]
    text = lambda: diagnostics_text(peer.diagnostics[-1:])  # noqa: E731
    assert peer.spin_until(lambda: "instructions_active=0" in text() and "instructions_cancelled=5" in text(), 10)


def test_a_compressed_bomb_is_refused_from_its_header_and_memory_stays_put(peer, perception) -> None:
    bomb = png_bomb(12000, 12000)
    assert len(bomb) < 1_000_000
    process = perception("grounding", image_transport="compressed", image_reliability="reliable")
    wait_active(peer, process)
    results = peer.collect(Grounding, P.grounding_topic)
    instructions = peer.instruction_publisher(P)
    instructions.publish(build_instruction("[the red mug]", instruction_id="mug"))
    camera = Camera(peer, compressed=True)
    for i in range(3):  # warm-up: model caches and allocator settle
        assert camera.send_and_wait(frame(i), results)
    before = resident_mb(process.pid)

    camera.publish(CompressedImage(format="png", data=bomb))
    text = lambda: diagnostics_text(peer.diagnostics)  # noqa: E731
    assert peer.spin_until(lambda: "frames_too_large=1" in text(), 30), text()[-2000:]
    assert "compressed PNG image of 12000x12000 = 144000000 pixels exceeds the limit of 8294400" in text()
    after_frame = camera.send_and_wait(frame(9), results)  # the next normal frame is answered
    after = resident_mb(process.pid)
    assert [(r.image_width, r.image_height) for r in after_frame] == [(80, 60)]
    assert all(r.image_width == 80 for r in results)  # no 12000x12000 result, ever
    assert after <= 1.10 * before, (before, after)
    print(f"resident memory before the bomb {before:.1f} MiB, after it and the next frame {after:.1f} MiB")
