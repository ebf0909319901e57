"""The nodes' one door to the model: FindModel calls and the device/precision settings.

Nodes never touch torch. They hand RGB arrays and parsed instructions to a PerceptionEngine and get
back the model's own results (GroundingResult), which :mod:`find_ros.nodes.result_msgs` turns into
find_ros_msgs. One lock serialises model use, so the frame worker and a service callback never run
the model at once, and every model call runs under ``torch.inference_mode``: nodes never train, and
FindModel's own eval mode is only ``no_grad``, which still records tensor versions and views for
autograd (measured under load on the 2-core CPU: one instruction's ground_many took 0.68x the time
under inference mode; benchmarks/model_latency.py already timed it that way, the node did not).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from find_ros.instructions import ParsedInstruction
    from find_ros.model import ImageEmbeddings, InstructionEmbeddings
    from find_ros.model.instruction_batch import InstructionBatch
    from find_ros.model.results import GroundingResult
    from find_ros.nodes.params import NodeParams


@dataclass
class EncodedInstruction:
    """An instruction encoded once: the model's embeddings (which carry the parsed instruction) and,
    once localization asks for it, its retrieval vector."""

    embeddings: InstructionEmbeddings
    vector: np.ndarray | None = None  # unit-length interleave-retrieval embedding


# Frames encoded and grounded in one batch by the localization re-rank: bounds the memory a batch
# of decoded candidates takes while amortising the per-call overhead.
FRAMES_PER_PASS = 8


class PerceptionEngine:
    """FindModel behind the settings of a node (model dir, device, precision, input size)."""

    def __init__(self, params: NodeParams) -> None:
        from find_ros.model import FindModel, resolve_model_dir

        if params.torch_threads:
            import torch

            torch.set_num_threads(params.torch_threads)  # process-wide: nodes in one process share it
        model_dir = resolve_model_dir(params.model or None)
        dtype = None if params.precision == "auto" else params.precision
        self.model = FindModel.from_pretrained(model_dir, device=params.device, dtype=dtype).eval()
        if params.input_size:
            self.model.config.input_size = int(params.input_size)
        self.model_name = model_dir.name + (" (UNTRAINED)" if self.model.untrained else "")
        self.device = str(self.model.device)
        self.embedding_dim = self.model.embed_dim
        self._lock = threading.Lock()
        self._stacked: InstructionBatch | None = None  # the last ground_all's instructions, stacked

    @contextlib.contextmanager
    def _model_call(self) -> Iterator[None]:
        """The one way into the model: under the lock and in inference mode (its tensors, the encoded
        instructions and the stacked batch included, are only ever used by these calls)."""
        import torch

        with self._lock, torch.inference_mode():
            yield

    def encode_frame(self, rgb: np.ndarray) -> ImageEmbeddings:
        with self._model_call():
            return self.model.encode_image(rgb)

    def encode_instruction(self, parsed: ParsedInstruction, visuals: list[np.ndarray]) -> EncodedInstruction:
        """Raises ValueError naming what is wrong (too many tokens, a bad crop, ...)."""
        with self._model_call():
            return EncodedInstruction(self.model.encode_instruction(parsed, visuals))

    def ground(self, frame: ImageEmbeddings, instruction: EncodedInstruction) -> GroundingResult:
        """One mask, score, box and match logit per entity of the instruction, in this frame."""
        with self._model_call():
            return self.model.ground(frame, instruction.embeddings)[0]

    def ground_all(self, frame: ImageEmbeddings, instructions: Sequence[EncodedInstruction]) -> list[GroundingResult]:
        """Every instruction grounded in this frame in one interface pass (FindModel.ground_many),
        in the given order. The stacked instructions are kept while the same ones come back, so a
        frame does not rebuild them."""
        embeddings = tuple(i.embeddings for i in instructions)
        with self._model_call():
            if not self.model.stacks_instructions:
                return [per_image[0] for per_image in self.model.ground_many(frame, embeddings)]
            cached = self._stacked
            if cached is None or len(cached.instructions) != len(embeddings) or \
                    any(a is not b for a, b in zip(cached.instructions, embeddings)):
                cached = self._stacked = self.model.batch_instructions(embeddings)
            return [per_image[0] for per_image in self.model.ground_many(frame, cached)]

    def ground_frames(self, images: Sequence[np.ndarray], instruction: EncodedInstruction) -> list[GroundingResult]:
        """The instruction grounded in each RGB image, in order: images of one size are encoded and
        grounded together, up to FRAMES_PER_PASS at a time (the localization re-rank)."""
        results: list[GroundingResult | None] = [None] * len(images)
        by_size: dict[tuple[int, ...], list[int]] = {}
        for k, image in enumerate(images):
            by_size.setdefault(image.shape, []).append(k)
        with self._model_call():
            for indices in by_size.values():
                for start in range(0, len(indices), FRAMES_PER_PASS):
                    chunk = indices[start: start + FRAMES_PER_PASS]
                    frames = self.model.encode_image([images[k] for k in chunk])
                    for k, grounded in zip(chunk, self.model.ground(frames, instruction.embeddings)):
                        results[k] = grounded
        return results  # type: ignore[return-value]

    def frame_vector(self, frame: ImageEmbeddings) -> np.ndarray:
        """Unit-length image embedding, comparable with :meth:`instruction_vector`."""
        with self._model_call():
            return self.model.embed_images(frame, "interleave_retrieval")[0].cpu().numpy()

    def instruction_vector(self, instruction: EncodedInstruction) -> np.ndarray:
        """The instruction's unit-length interleave-retrieval embedding, computed on first use."""
        if instruction.vector is None:
            with self._model_call():
                instruction.vector = self.model.embed_instructions([instruction.embeddings])[0].cpu().numpy()
        return instruction.vector

    def close(self) -> None:
        """Free the model (and the GPU memory it held)."""
        import torch

        on_cuda = self.device.startswith("cuda")
        with self._lock:
            del self.model
        if on_cuda:
            torch.cuda.empty_cache()
