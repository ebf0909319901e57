"""The cameras a node serves: their topics (colour, aligned depth, CameraInfo) and where results go.

Without the ``cameras`` parameter a node serves one camera at ``image_topic``, ``depth_topic`` and
``camera_info_topic`` and publishes on its output topics as given. With ``cameras`` (a list of
namespaces, e.g. ``[/front, /rear]``) it serves each: the camera at namespace ``ns`` is read from
``ns/<cameras_image_topic>``, ``ns/<cameras_depth_topic>``, ``ns/<cameras_info_topic>`` (relative
names, by default the RealSense/Orbbec layout ``color/image_raw``, ``depth/image_raw``,
``color/camera_info``) and its results go to ``ns`` + each output topic (``/front/find_ros/grounding``),
as a ROS user expects per-camera streams to sit under the camera's namespace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Camera:
    name: str          # the namespace ("" for the single camera of image_topic)
    image_topic: str
    depth_topic: str   # "" = no depth: answered in 2D
    info_topic: str

    def output_topic(self, topic: str) -> str:
        """Where this camera's results of ``topic`` go."""
        return topic if not self.name else join(self.name, topic)


def join(namespace: str, name: str) -> str:
    return "/" + "/".join(part for part in (*namespace.split("/"), *name.split("/")) if part)


def check_namespaces(namespaces: Sequence[str]) -> None:
    """Refuse camera namespaces that are empty, relative or repeated, naming the parameter."""
    for ns in namespaces:
        if not ns.startswith("/") or ns.strip("/") == "":
            raise ValueError(f"cameras: each entry must be an absolute namespace like '/front', got {ns!r}")
    repeated = sorted({ns for ns in namespaces if list(namespaces).count(ns) > 1})
    if repeated:
        raise ValueError(f"cameras: namespace(s) listed twice: {', '.join(repeated)}")


def cameras_of(params: Any) -> list[Camera]:
    """The cameras a node's parameters describe (find_ros.nodes.params.NodeParams)."""
    if not params.cameras:
        return [Camera("", params.image_topic, params.depth_topic, params.camera_info_topic)]
    return [Camera(ns.rstrip("/"), join(ns, params.cameras_image_topic),
                   join(ns, params.cameras_depth_topic) if params.cameras_depth_topic else "",
                   join(ns, params.cameras_info_topic)) for ns in params.cameras]
