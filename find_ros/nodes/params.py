"""Node parameters: one dataclass per node, declared on the node from the dataclass's fields.

The defaults here are the documented defaults; config/perception.yaml overrides them, both under
`ros2 launch find_ros perception.launch.py` and `find-ros perception --params config/perception.yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from find_ros.image_header import DEFAULT_MAX_PIXELS

P = TypeVar("P")


@dataclass
class NodeParams:
    """What every perception node takes: the model, the camera and the instruction topic."""

    autostart: bool = False       # configure and activate on start (ros2 run/launch; find-ros perception: on)
    model: str = ""               # model directory; "" = the packaged default model
    device: str = "auto"          # auto | cpu | cuda | cuda:N
    precision: str = "auto"       # auto (bf16 on CUDA, fp16 where the GPU lacks bf16; fp32 on CPU) | fp32 | fp16 | bf16
    input_size: int = 0           # long side the frame is resized to; 0 = the model's own setting
    image_topic: str = "/camera/color/image_raw"  # the RealSense/Orbbec/ZED drivers' colour topic
    image_transport: str = "raw"  # raw | compressed (subscribes to <image_topic>/compressed)
    image_reliability: str = "auto"  # auto (copy the camera's, see qos.py) | reliable | best_effort
    max_image_pixels: int = DEFAULT_MAX_PIXELS  # larger frames and crops are refused before decoding
    # 3D: depth registered to colour (16UC1 mm or 32FC1 m) and the colour camera's CameraInfo.
    depth_topic: str = "/camera/depth/image_raw"  # "" = no 3D
    camera_info_topic: str = "/camera/color/camera_info"
    depth_sync_tolerance_s: float = 0.02  # a depth image this close in stamp is the frame's
    depth_wait_s: float = 0.5     # a frame waits at most this long for its depth, then is answered in 2D
    # Several cameras (find_ros.nodes.cameras): namespaces; [] = the one camera above.
    cameras: list[str] = field(default_factory=list)
    cameras_image_topic: str = "color/image_raw"    # under each namespace
    cameras_depth_topic: str = "depth/image_raw"    # under each namespace; "" = no 3D
    cameras_info_topic: str = "color/camera_info"   # under each namespace
    instruction_topic: str = "/find_ros/instruction"
    instruction_status_topic: str = "/find_ros/instruction_status"  # accepted / refused / failed / cancelled
    max_instructions: int = 8     # active instructions; new ones beyond are refused (nothing is evicted)
    max_instructions_per_sender: int = 4  # of those, at most this many from one publisher
    diagnostics_period_s: float = 1.0
    torch_threads: int = 0        # CPU threads torch may use (process-wide); 0 = torch's default (the cores)

    def __post_init__(self) -> None:
        """Refuse settings that cannot work, naming the parameter."""
        if self.image_transport not in ("raw", "compressed"):
            raise ValueError(f"image_transport must be 'raw' or 'compressed', got {self.image_transport!r}")
        if self.precision not in ("auto", "fp32", "fp16", "bf16"):
            raise ValueError(f"precision must be auto, fp32, fp16 or bf16, got {self.precision!r}")
        if self.image_reliability not in ("auto", "reliable", "best_effort"):
            raise ValueError(f"image_reliability must be auto, reliable or best_effort, got {self.image_reliability!r}")
        _positive(self, "max_instructions", "max_instructions_per_sender", "max_image_pixels")
        if self.torch_threads < 0:
            raise ValueError(f"torch_threads must be >= 0 (0 = torch's default), got {self.torch_threads}")
        if self.depth_sync_tolerance_s < 0 or self.depth_wait_s < 0:
            raise ValueError(f"depth_sync_tolerance_s and depth_wait_s must be >= 0, got "
                             f"{self.depth_sync_tolerance_s} and {self.depth_wait_s}")
        from find_ros.nodes.cameras import check_namespaces

        self.cameras = [str(ns) for ns in self.cameras]
        check_namespaces(self.cameras)


def _positive(params: NodeParams, *names: str) -> None:
    for name in names:
        if getattr(params, name) <= 0:
            raise ValueError(f"{name} must be positive, got {getattr(params, name)}")


@dataclass
class GroundingParams(NodeParams):
    grounding_topic: str = "/find_ros/grounding"
    overlay_topic: str = "/find_ros/overlay"
    # An entity is found (published with box and mask) when its presence confidence reaches this;
    # 0 = the model's calibrated threshold (config.json "presence"; 0.5 for an uncalibrated model).
    presence_threshold: float = 0.0
    publish_masks: bool = True
    publish_overlay: bool = True


    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.presence_threshold < 1.0:
            raise ValueError(f"presence_threshold must be in [0, 1) (0: the model's own), got {self.presence_threshold}")

    @property
    def presence_override(self) -> float | None:
        """The threshold that overrides the model's, or None to use the model's."""
        return self.presence_threshold or None


@dataclass
class LocalizationParams(NodeParams):
    localization_topic: str = "/find_ros/localization"
    memory_capacity: int = 2000         # remembered keyframes
    memory_payload_mb: int = 256        # compressed frames kept for re-grounding and frame regions
    keyframe_interval_s: float = 1.0
    keyframe_change_threshold: float = 0.95
    top_k: int = 3
    rerank_candidates: int = 32         # frames re-scored by grounding per query (0: embedding only)
    continuous: bool = False            # publish when the live view matches an active instruction
    continuous_threshold: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "memory_capacity", "top_k")
        if self.rerank_candidates < 0:
            raise ValueError(f"rerank_candidates must be >= 0, got {self.rerank_candidates}")


def declare(node: Any, params_type: type[P]) -> P:
    """Declare every field of ``params_type`` on ``node`` and return the values in effect (checked
    by the dataclass)."""
    from rclpy.parameter import Parameter

    values = {}
    for f in fields(params_type):  # type: ignore[arg-type]
        if f.default_factory is not list:  # type: ignore[comparison-overlap]
            values[f.name] = node.declare_parameter(f.name, f.default).value
        else:  # an empty list says nothing of its type: declare it a string array
            values[f.name] = list(node.declare_parameter(f.name, Parameter.Type.STRING_ARRAY).value or [])
    return params_type(**values)
