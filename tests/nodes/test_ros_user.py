"""What a ROS 2 user meets first: lifecycle of the executables, the ready signal, late joiners,
and tools that join the caller's graph. Real rclpy over loopback DDS (the suite's private domain)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import Any

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from find_ros_msgs.msg import Grounding, Instruction
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Bool

from find_ros.nodes.any_durability import subscribe_any_durability
from find_ros.nodes.grounding_node import GroundingNode
from find_ros.nodes.images import numpy_to_image_msg
from find_ros.nodes.instruction_msgs import build_instruction
from find_ros.nodes.params import GroundingParams
from find_ros.nodes.qos import INSTRUCTION_PUBLISHER, READY
from find_ros.nodes.runner import executor_for
from find_ros.scenes.rosbag import STORAGES

from .conftest import diagnostics_text, frame

pytestmark = pytest.mark.timeout(240)


# Node names of their own: an in-process node of another test file whose context was shut down
# without destroying it still offers its services under the default name, and never answers.
EXECUTABLE_NODE = "user_grounding"
GATED_NODE = "gated_grounding"


class Lifecycle:
    """`ros2 lifecycle get/set` for one node, from the test's peer."""

    def __init__(self, peer: Any, node: str) -> None:
        self.peer = peer
        self._get = peer.node.create_client(GetState, f"/{node}/get_state")
        self._change = peer.node.create_client(ChangeState, f"/{node}/change_state")
        assert self._get.wait_for_service(timeout_sec=60) and self._change.wait_for_service(timeout_sec=60)

    def get(self) -> str:
        future = self._get.call_async(GetState.Request())
        assert self.peer.spin_until(future.done, 30), "get_state did not answer"
        return future.result().current_state.label

    def change_async(self, transition: int) -> Any:
        return self._change.call_async(ChangeState.Request(transition=Transition(id=transition)))

    def change(self, transition: int) -> bool:
        future = self.change_async(transition)
        assert self.peer.spin_until(future.done, 120), f"transition {transition} did not complete"
        return future.result().success


def _ready_values(peer: Any, node: str) -> list[bool]:
    values: list[bool] = []
    peer.node.create_subscription(Bool, f"/{node}/ready", lambda m: values.append(m.data), READY)
    return values


def test_an_executable_waits_unconfigured_answers_get_state_and_loads_the_model_only_on_activate(peer, tiny_model_dir) -> None:
    executable = subprocess.Popen(
        [sys.executable, "-c", "from find_ros.nodes.grounding_node import main; main()",
         "--ros-args", "-r", f"__node:={EXECUTABLE_NODE}", "-p", f"model:={tiny_model_dir}", "-p", "diagnostics_period_s:=0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        ready = _ready_values(peer, EXECUTABLE_NODE)
        lifecycle = Lifecycle(peer, EXECUTABLE_NODE)
        assert lifecycle.get() == "unconfigured"
        assert peer.spin_until(lambda: ready == [False], 30), ready  # latched: known before anything happens
        assert lifecycle.get() == "unconfigured"

        diags = peer.collect(DiagnosticArray, "/diagnostics")
        assert lifecycle.change(Transition.TRANSITION_CONFIGURE)
        assert lifecycle.get() == "inactive"
        assert peer.spin_until(lambda: "state=inactive" in diagnostics_text(diags), 30)
        assert "model=\n" in diagnostics_text(diags) + "\n"  # configured, but no model yet

        assert lifecycle.change(Transition.TRANSITION_ACTIVATE)
        assert lifecycle.get() == "active"
        assert peer.spin_until(lambda: ready[-1:] == [True], 30), ready
        assert peer.spin_until(lambda: "model=tiny (UNTRAINED)" in diagnostics_text(diags[-2:]), 30), diagnostics_text(diags[-2:])

        assert lifecycle.change(Transition.TRANSITION_DEACTIVATE)
        assert lifecycle.get() == "inactive"
        assert peer.spin_until(lambda: ready[-1:] == [False], 30), ready
        assert peer.spin_until(lambda: "state=inactive" in diagnostics_text(diags[-1:]), 30)
        assert "model=tiny" not in diagnostics_text(diags[-1:])  # freed
        assert executable.poll() is None
    finally:
        executable.terminate()
        output = executable.communicate(timeout=30)[0]
    assert "Unable to start transition" not in output, output


def test_an_executable_with_autostart_activates_itself(peer, tiny_model_dir) -> None:
    executable = subprocess.Popen(
        [sys.executable, "-c", "from find_ros.nodes.localization_node import main; main()",
         "--ros-args", "-r", "__node:=user_localization", "-p", f"model:={tiny_model_dir}", "-p", "autostart:=true"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        ready = _ready_values(peer, "user_localization")
        assert peer.spin_until(lambda: ready[-1:] == [True] or executable.poll() is not None, 120), ready
        assert Lifecycle(peer, "user_localization").get() == "active"
    finally:
        executable.terminate()
        output = executable.communicate(timeout=30)[0]
    assert "Unable to start transition" not in output and "Failed to" not in output, output


class GatedGrounding(GroundingNode):
    """The grounding node whose model load waits for the test: a slow activation on demand."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.loading = threading.Event()
        self.gate = threading.Event()

    def load_engine(self) -> Any:
        self.loading.set()
        assert self.gate.wait(120), "the test never opened the gate"
        return super().load_engine()


def test_get_state_answers_while_the_model_loads_and_ready_follows_the_model(peer, tiny_model_dir) -> None:
    context = rclpy.Context()
    rclpy.init(context=context)
    node = GatedGrounding(name=GATED_NODE, context=context, parameter_overrides=[Parameter("model", value=str(tiny_model_dir))])
    executor = executor_for([node], context)  # the executor the node executables spin on
    spinning = threading.Thread(target=executor.spin, daemon=True)
    spinning.start()
    try:
        ready = _ready_values(peer, GATED_NODE)
        lifecycle = Lifecycle(peer, GATED_NODE)
        assert lifecycle.change(Transition.TRANSITION_CONFIGURE)
        activation = lifecycle.change_async(Transition.TRANSITION_ACTIVATE)
        assert peer.spin_until(node.loading.is_set, 60)

        assert lifecycle.get() == "activating"  # answered while on_activate is still loading
        assert not activation.done() and node.engine is None
        assert peer.spin_until(lambda: ready == [False], 30), ready

        node.gate.set()
        assert peer.spin_until(activation.done, 120) and activation.result().success
        assert lifecycle.get() == "active" and node.engine is not None
        assert peer.spin_until(lambda: ready[-1:] == [True], 30), ready
        late = _ready_values(peer, GATED_NODE)  # a late subscriber gets the current value
        assert peer.spin_until(lambda: late == [True], 30), late

        assert lifecycle.change(Transition.TRANSITION_DEACTIVATE)
        assert node.engine is None and node._worker is None  # noqa: SLF001 - the model and its thread are freed
        assert peer.spin_until(lambda: ready[-1:] == [False], 30), ready
    finally:
        node.gate.set()
        executor.shutdown(timeout_sec=10)
        node.destroy_node()
        rclpy.shutdown(context=context)


def test_an_instruction_sent_before_the_node_started_is_served(peer, perception) -> None:
    sender = peer.node.create_publisher(Instruction, "/find_ros/instruction", INSTRUCTION_PUBLISHER)
    sender.publish(build_instruction("[the red mug]", instruction_id="early"))  # nobody is listening yet
    diags = peer.collect(DiagnosticArray, "/diagnostics")
    results = peer.collect(Grounding, "/find_ros/grounding")
    process = perception("grounding")
    assert peer.spin_until(lambda: "state=active" in diagnostics_text(diags) or process.poll() is not None, 120)
    assert process.poll() is None
    assert peer.spin_until(lambda: "instructions_active=1" in diagnostics_text(diags[-1:]), 30)

    # A volatile sender (`ros2 topic pub` by default) still reaches the node, and the transient-local
    # sender's sample, received through both subscriptions, is kept once.
    volatile = peer.node.create_publisher(
        Instruction, "/find_ros/instruction",
        QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE),
    )
    assert peer.spin_until(lambda: volatile.get_subscription_count() > 0, 30)
    volatile.publish(build_instruction("[a blue box]", instruction_id="later"))
    assert peer.spin_until(lambda: "instructions_active=2" in diagnostics_text(diags[-1:]), 30)

    camera = peer.node.create_publisher(Image, GroundingParams().image_topic, 10)
    assert peer.spin_until(lambda: camera.get_subscription_count() > 0, 30)
    ticks = iter(range(10**6))
    assert peer.spin_until(lambda: {"early", "later"} <= {r.instruction_id for r in results}, 90,
                           step=lambda: next(ticks) % 10 == 0 and camera.publish(numpy_to_image_msg(frame(1), "rgb8")))


def test_a_sample_received_through_both_subscriptions_is_delivered_once(peer) -> None:
    received: list[str] = []
    subscriptions = subscribe_any_durability(peer.node, Instruction, "/test/both", lambda m, _info: received.append(m.id))
    assert len(subscriptions) == 2
    sender = peer.node.create_publisher(Instruction, "/test/both", INSTRUCTION_PUBLISHER)  # matches both
    assert peer.spin_until(lambda: sender.get_subscription_count() == 2, 30)
    raw: list[str] = []
    peer.node.create_subscription(Instruction, "/test/both", lambda m: raw.append(m.id), 10)
    assert peer.spin_until(lambda: sender.get_subscription_count() == 3, 30)
    for name in ("a", "b", "c"):
        sender.publish(Instruction(id=name))
    # The plain subscription sees each sample once; by then the deduplicated ones are in too.
    assert peer.spin_until(lambda: raw == ["a", "b", "c"] and len(received) >= 3, 30)
    peer.spin_until(lambda: False, 0.5)  # a late duplicate would land here
    assert received == ["a", "b", "c"]


def test_find_ros_instruct_reaches_a_node_in_the_callers_domain() -> None:
    suite_domain = int(os.environ["ROS_DOMAIN_ID"])
    callers_domain = 1 + suite_domain % 101  # another private domain, not the suite's
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=callers_domain)
    try:
        node = rclpy.create_node("callers_graph", context=context)
        received: list[Instruction] = []
        subscribe_any_durability(node, Instruction, "/find_ros/instruction", lambda m, _info: received.append(m))
        env = {k: v for k, v in os.environ.items() if k != "FIND_ROS_PRIVATE_DOMAIN"}
        env["ROS_DOMAIN_ID"] = str(callers_domain)
        tool = subprocess.Popen(
            [sys.executable, "-m", "find_ros.cli", "instruct", "[the red mug]", "--id", "yours", "--timeout", "60"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        from rclpy.executors import SingleThreadedExecutor

        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        drain = 100  # spins after the tool ended, for a sample still in flight
        while not received and drain > 0:
            executor.spin_once(timeout_sec=0.05)
            drain -= tool.poll() is not None
        output = tool.communicate(timeout=30)[0]
    finally:
        rclpy.shutdown(context=context)
    assert tool.returncode == 0, output
    assert "(1 subscribing node(s))" in output
    assert [m.id for m in received] == ["yours"]


@pytest.mark.parametrize("storage", STORAGES)
def test_find_ros_play_of_the_packages_own_bag_feeds_the_default_graph(peer, perception, tmp_path, storage) -> None:
    from find_ros.nodes.bag_player import bag_topics
    from find_ros.scenes import make_trajectory

    make_trajectory(tmp_path / "walk", 30, seed=3, size=(64, 48), fps=10.0, storage=storage, progress=False)
    diags = peer.collect(DiagnosticArray, "/diagnostics")
    process = perception("grounding")  # the tiny model; every topic at its default
    assert peer.spin_until(lambda: "state=active" in diagnostics_text(diags) or process.poll() is not None, 120)
    assert process.poll() is None

    player = subprocess.run([sys.executable, "-m", "find_ros.cli", "play", str(tmp_path / "walk" / "rosbag")],
                            capture_output=True, text=True, timeout=120)
    assert player.returncode == 0, player.stdout + player.stderr
    assert "note: skipping /tf: tf2_msgs/msg/TFMessage is not installed here" in player.stdout
    playable = sum(count for topic, (_, count) in bag_topics(tmp_path / "walk" / "rosbag").items() if topic != "/tf")
    assert f"published {playable} message(s)" in player.stdout
    # The camera topic the bag writes is the one the node listens to by default.
    assert peer.spin_until(lambda: any(f"frames_processed={n}" in diagnostics_text(diags[-1:]) for n in range(1, 31)), 60)
    assert "frames_bad=0" in diagnostics_text(diags[-1:])
