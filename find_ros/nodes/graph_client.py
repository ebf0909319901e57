"""The other side of the perception graph: start it in its own process, talk to it over DDS, wait.

The demo, the perception benchmark and the node tests all drive the graph the way a robot's software
would: `find-ros perception` runs in a process of its own, and a client node in this process sends
frames and instructions and collects what comes back. :func:`start_perception` and
:class:`GraphClient` are that loop, written once. The caller keeps DDS on this machine
(find_ros.ros_env.isolate_dds) before either starts.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from find_ros.nodes.params import NodeParams

NODE_NAMES = {"grounding": "find_grounding", "localization": "find_localization"}


class GraphEnded(RuntimeError):
    """The perception process ended while the client was waiting for it."""


def start_perception(params: dict[str, dict[str, Any]], workdir: Path, nodes: str = "grounding,localization") -> subprocess.Popen:
    """`find-ros perception` with ``params`` (node name -> parameter values) written to a
    parameter file in ``workdir``; its output is kept for :meth:`GraphClient.graph_output`."""
    import yaml

    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "perception.yaml"
    class NoAliases(yaml.SafeDumper):  # rcl's parameter parser refuses YAML anchors (a list shared by two nodes)
        def ignore_aliases(self, data: Any) -> bool:
            return True

    path.write_text(yaml.dump({name: {"ros__parameters": values} for name, values in params.items()}, Dumper=NoAliases))
    return subprocess.Popen([sys.executable, "-m", "find_ros.cli", "perception", "--params", str(path), "--nodes", nodes],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop_process(process: subprocess.Popen, timeout_s: float = 30.0) -> str:
    """Terminate (then kill) ``process``; returns what it printed."""
    process.terminate()
    try:
        return process.communicate(timeout=timeout_s)[0] or ""
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[0] or ""


class GraphClient:
    """One node in a context of its own, its executor, the graph's status, and waits.

    ``graph``, when given, is watched: a wait fails at once with its output if it ends.
    """

    def __init__(self, name: str = "find_ros_client", graph: subprocess.Popen | None = None) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.graph = graph
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.status: dict[str, dict[str, str]] = defaultdict(dict)  # node name -> latest diagnostic values
        self.diagnostics: list[Any] = []

    # --- what comes back ------------------------------------------------------------------------
    def collect(self, msg_type: type, topic: str, qos: Any = 10, keep: Callable[[Any], None] | None = None) -> list[Any]:
        """Subscribe to ``topic``; the returned list fills as messages arrive (``keep`` instead)."""
        received: list[Any] = []
        self.node.create_subscription(msg_type, topic, keep or received.append, qos)
        return received

    def watch_diagnostics(self) -> list[Any]:
        """Subscribe to /diagnostics: every array is kept, and :attr:`status` holds each node's latest values."""
        from diagnostic_msgs.msg import DiagnosticArray

        from find_ros.nodes.diagnostics import TOPIC

        def keep(array: Any) -> None:
            self.diagnostics.append(array)
            for status in array.status:
                self.status[status.name].update({kv.key: kv.value for kv in status.values})

        self.collect(DiagnosticArray, TOPIC, 50, keep)
        return self.diagnostics

    def wait_active(self, node_names: list[str], timeout_s: float = 300.0) -> None:
        """Until every named node reports state=active on /diagnostics (watch_diagnostics first)."""
        if not self.spin_until(lambda: all(self.status[n].get("state") == "active" for n in node_names), timeout_s):
            raise TimeoutError(f"{', '.join(node_names)} did not become active within {timeout_s:.0f} s")

    # --- sending --------------------------------------------------------------------------------
    def instruction_publisher(self, params: NodeParams, subscribers: int = 1, timeout_s: float = 30.0) -> Any:
        """A publisher on the nodes' instruction topic, once ``subscribers`` nodes listen to it."""
        from find_ros_msgs.msg import Instruction

        from find_ros.nodes.qos import INSTRUCTION_PUBLISHER

        publisher = self.node.create_publisher(Instruction, params.instruction_topic, INSTRUCTION_PUBLISHER)
        if not self.spin_until(lambda: publisher.get_subscription_count() >= subscribers, timeout_s):
            raise TimeoutError(f"fewer than {subscribers} subscriber(s) on {params.instruction_topic}")
        return publisher

    def call(self, srv_type: type, service: str, request: Any, timeout_s: float = 60.0) -> Any:
        """Call ``service`` and wait for the answer."""
        client = self.node.create_client(srv_type, service)
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise TimeoutError(f"service {service} is not offered")
        future = client.call_async(request)
        if not self.spin_until(future.done, timeout_s):
            raise TimeoutError(f"no answer from {service} within {timeout_s:.0f} s")
        return future.result()

    # --- waiting --------------------------------------------------------------------------------
    def spin_until(self, condition: Callable[[], bool], timeout_s: float, step: Callable[[], Any] | None = None) -> bool:
        """Spin until ``condition()`` holds (True) or ``timeout_s`` passes (False); ``step`` runs
        before each spin (e.g. to publish the next frame)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_graph()
            if step is not None:
                step()
            self.executor.spin_once(timeout_sec=0.05)
            if condition():
                return True
        return condition()

    def spin_for(self, seconds: float) -> None:
        """Serve callbacks for ``seconds`` (pacing a camera, not waiting for an outcome)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.executor.spin_once(timeout_sec=left)

    def _check_graph(self) -> None:
        if self.graph is not None and self.graph.poll() is not None:
            raise GraphEnded("the perception process ended:\n" + (self.graph.communicate()[0] or "")[-3000:])

    def close(self) -> None:
        import rclpy

        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Camera:
    """A camera publisher: raw Image or JPEG CompressedImage frames, stamped when they leave."""

    def __init__(self, client: GraphClient, image_topic: str, *, compressed: bool = False, qos: Any = None) -> None:
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import CompressedImage, Image

        self.client = client
        self.compressed = compressed
        self.stamps: list[int] = []
        self.publisher = client.node.create_publisher(CompressedImage if compressed else Image,
                                                      f"{image_topic}/compressed" if compressed else image_topic,
                                                      qos_profile_sensor_data if qos is None else qos)

    def message(self, rgb: Any) -> Any:
        """The message this camera sends for an RGB frame."""
        import cv2
        import numpy as np
        from sensor_msgs.msg import CompressedImage

        from find_ros.nodes.images import numpy_to_image_msg

        if self.compressed:
            jpeg = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]))[1].tobytes()
            return CompressedImage(format="jpeg", data=jpeg)
        return numpy_to_image_msg(rgb, "rgb8")

    def publish(self, msg: Any) -> int:
        """Stamp and send ``msg`` (a message, or an RGB frame); returns its stamp in ns."""
        if not hasattr(msg, "header"):
            msg = self.message(msg)
        msg.header.stamp = self.client.node.get_clock().now().to_msg()
        msg.header.frame_id = "camera"
        self.publisher.publish(msg)
        self.stamps.append(msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)
        return self.stamps[-1]

    def wait_for_subscriber(self, timeout_s: float = 30.0) -> None:
        if not self.client.spin_until(lambda: self.publisher.get_subscription_count() > 0, timeout_s):
            raise TimeoutError(f"no subscriber on {self.publisher.topic_name}")


def resident_mb(pid: int) -> float:
    """Resident memory of a process (VmRSS), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def service_name(node_name: str, service: str) -> str:
    """The full name of a node's private service (``~/service``)."""
    return f"/{node_name}/{service}"
