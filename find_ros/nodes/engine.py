"""The nodes' one door to the model: FindModel calls, device/precision settings, and result messages.

Nodes never touch torch. They hand RGB arrays and parsed instructions to a PerceptionEngine and get
back plain results (EntityOutcome) that this module also turns into find_ros_msgs. One lock
serialises model use, so the frame worker and a service callback never run the model at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class EntityOutcome:
    """Where one entity was found in one frame (pixels of that frame)."""

    entity_index: int
    label: str
    visual_index: int | None
    score: float
    box: tuple[int, int, int, int]  # x0, y0, x1, y1, exclusive ends; zeros when the mask is empty
    mask: np.ndarray                # bool (H, W)
    match: float = 0.0              # matching logit: comparable across frames, unlike score


def entity_msg(outcome: EntityOutcome, header: Any, with_mask: bool, score_threshold: float) -> Any:
    """find_ros_msgs/EntityResult; below the threshold the box and mask stay empty."""
    from find_ros_msgs.msg import EntityResult

    from find_ros.nodes.images import numpy_to_image_msg

    msg = EntityResult()
    msg.entity_index = outcome.entity_index
    msg.label = outcome.label[:500]
    msg.visual_index = -1 if outcome.visual_index is None else int(outcome.visual_index)
    msg.score = float(outcome.score)
    if outcome.score < score_threshold:
        return msg
    x0, y0, x1, y1 = outcome.box
    msg.box.x_offset, msg.box.y_offset, msg.box.width, msg.box.height = x0, y0, x1 - x0, y1 - y0
    msg.mask_area = int(outcome.mask.sum())
    if with_mask:
        msg.mask = numpy_to_image_msg(outcome.mask.astype(np.uint8) * 255, "mono8", header)
    return msg


def grounding_msg(header: Any, instruction_id: str, size: tuple[int, int], outcomes: list[EntityOutcome], params: Any) -> Any:
    """find_ros_msgs/Grounding for one frame and one instruction (timing left to the caller)."""
    from find_ros_msgs.msg import Grounding

    msg = Grounding()
    msg.header = header
    msg.instruction_id = instruction_id
    msg.image_height, msg.image_width = int(size[0]), int(size[1])
    msg.entities = [entity_msg(o, header, params.publish_masks if hasattr(params, "publish_masks") else True,
                               getattr(params, "score_threshold", 0.0)) for o in outcomes]
    return msg


@dataclass
class EncodedInstruction:
    """An instruction encoded once: the model's embeddings, its entities, and its retrieval vector."""

    parsed: Any
    embeddings: Any
    vector: np.ndarray  # unit-length interleave-retrieval embedding


class PerceptionEngine:
    """FindModel behind the settings of a node (model dir, device, precision, input size)."""

    def __init__(self, params: Any) -> None:
        from find_ros.model import FindModel, resolve_model_dir

        model_dir = resolve_model_dir(params.model or None)
        dtype = None if params.precision == "auto" else params.precision
        self.model = FindModel.from_pretrained(model_dir, device=params.device, dtype=dtype).eval()
        if params.input_size:
            self.model.config.input_size = int(params.input_size)
        self.model_name = model_dir.name + (" (UNTRAINED)" if self.model.untrained else "")
        self.device = str(self.model.device)
        self.embedding_dim = self.model.embed_dim
        self._lock = threading.Lock()

    def encode_frame(self, rgb: np.ndarray) -> Any:
        with self._lock:
            return self.model.encode_image(rgb)

    def encode_instruction(self, parsed: Any, visuals: list[np.ndarray]) -> EncodedInstruction:
        """Raises ValueError naming what is wrong (too many tokens, a bad crop, ...)."""
        with self._lock:
            embeddings = self.model.encode_instruction(parsed.text, visuals)
            vector = self.model.embed_instructions([embeddings])[0].cpu().numpy()
        return EncodedInstruction(parsed, embeddings, vector)

    def ground(self, frame: Any, instruction: EncodedInstruction) -> list[EntityOutcome]:
        with self._lock:
            result = self.model.ground(frame, instruction.embeddings)[0]
        outcomes = []
        for index, (entity, found) in enumerate(zip(instruction.parsed.entities, result.entities)):
            box = tuple(found.box) if found.box is not None else (0, 0, 0, 0)
            outcomes.append(EntityOutcome(index, entity.label, entity.visual_index, float(found.score), box, found.mask,
                                          float(found.match)))
        return outcomes

    def frame_vector(self, frame: Any) -> np.ndarray:
        """Unit-length image embedding, comparable with :meth:`instruction_vector`."""
        with self._lock:
            return self.model.embed_images(frame, "interleave_retrieval")[0].cpu().numpy()

    @staticmethod
    def instruction_vector(instruction: EncodedInstruction) -> np.ndarray:
        return instruction.vector

    def close(self) -> None:
        """Free the model (and the GPU memory it held)."""
        import torch

        on_cuda = self.device.startswith("cuda")
        with self._lock:
            del self.model
        if on_cuda:
            torch.cuda.empty_cache()

    grounding_msg = staticmethod(grounding_msg)
