"""The FIND embeddings of the feature field — teacher side and query side — through FindModel's
public API only, so that what the field learns and what a query asks live in one space.

Two teachers (``--pipeline.model.teacher``), both in FIND's semantic space (unit vectors compared
by cosine, where FIND's heads put images, proposals, captions and instructions):

* ``"crops"`` (default), LERF's recipe with FIND in CLIP's place: the teacher of pixel p at scale s
  is ``embed_images`` of the s-sized crops around it (:mod:`find_ros.fields.pyramid`), FIND's
  image-level retrieval embedding — the one image-side embedding that captions and interleaved
  instructions are trained to match without seeing the image, as a 3D query must. The field's
  head is conditioned on the crop's world-space scale.
* ``"dense"``: per-pixel embeddings on FIND's stride-4 grid — FIND's object proposals run with an
  empty prompt (``run("generic_segmentation", image, class=<empty TokenSet>)``: the learned object
  queries attend to the image alone), each pixel the mask-weighted mean of the proposals' unit
  semantic embeddings, ``sum_q sigmoid(m_q(p)) s_q / sum_q sigmoid(m_q(p))`` (Mask2Former's
  semantic inference with embeddings in place of class probabilities). Sharper, one FIND pass per
  image instead of ~115.

Why crops by default — measured with the default model on a synthetic trajectory (7 objects, 40
views at 320x240, 1000 training steps, ~8-10 minutes on 2 CPU threads, benchmarks/field_accuracy.py;
"within" = 10% of the objects' extent, 0.138 m), locating by relevancy alone: image-crop queries
landed within for 3/7 objects with the crops teacher and 2/7 with the dense one (6/7 and 5/7
within 10% of the room's extent), text queries for 1/7 and 2/7 (session-2 model, 192 px). Text
queries by relevancy stay poor with either teacher: a caption embedding barely prefers an object's
crop over a wall's. That is why `find-ros field query` locates by FIND's grounding in the rendered
views by default (:mod:`find_ros.fields.grounded`); relevancy still drives the viewer's outputs.

Queries use the same model, in the same space:

* text: ``embed_captions([text])`` (FIND's language path);
* image crop: the teacher's own function on the crop — ``embed_images`` (crops teacher, exactly as
  the teacher embedded crops), or the crop's dense map averaged over its central third (dense);
* interleaved instruction ("the mug left of <0>" + crops): ``embed_instructions``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from find_ros.fields.pyramid import STRIDE, CropGrid

if TYPE_CHECKING:
    from find_ros.model import FindModel

TeacherKind = Literal["dense", "crops"]
TEACHER_KINDS = ("dense", "crops")
DENSE_TASK, DENSE_PROPOSALS, DENSE_PROMPT = "generic_segmentation", "object", "class"
_HASH_CHUNK = 1 << 20


# Files that document a model but do not decide its outputs (a model card added next to the
# weights must not orphan every field distilled from them).
_NOT_MODEL = {".md", ".rst", ".html", ".pdf", ".png", ".jpg", ".jpeg", ".log"}


def _hash_tree(digest: hashlib._Hash, root: Path) -> None:
    files = (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() not in _NOT_MODEL
             and not any(part.startswith(".") for part in p.relative_to(root).parts))
    for path in sorted(files):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(_HASH_CHUNK):
                digest.update(chunk)


def model_fingerprint(model_dir: str | Path) -> str:
    """sha256 (hex) of everything that decides a FIND model's outputs: the files of its directory
    (config, weights, copied encoders; not documentation or hidden files) and of encoder
    directories its config names outside it.
    Keys the teacher cache and is stored in field checkpoints, so a query can check it uses the
    model the field was distilled from."""
    from find_ros.model import FindConfig
    from find_ros.model.encoders import resolve_model_source

    model_dir = Path(model_dir)
    config = FindConfig.load(model_dir / "config.json")
    digest = hashlib.sha256(b"find_ros.fields/model/1\0")
    _hash_tree(digest, model_dir)
    for name in (config.vision_model, config.language_model):
        source = Path(resolve_model_source(name, model_dir))
        if source.is_dir() and not source.resolve().is_relative_to(model_dir.resolve()):
            _hash_tree(digest, source)
        else:
            digest.update(name.encode() + b"\0")  # inside the model dir (hashed above) or a named model
    return digest.hexdigest()


def as_rgb(image: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) from what image loaders return (grey, RGBA)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an image of shape (H, W, 3 or 4), got {image.shape}")
    return np.ascontiguousarray(image[..., :3])


class FieldEmbedder:
    """A FindModel seen from the feature field: unit vectors (float32, CPU) in FIND's semantic
    space, for training images (teacher) and for text, crop and instruction queries."""

    def __init__(self, model: FindModel, model_dir: str | Path, batch_size: int = 16,
                 kind: TeacherKind = "crops") -> None:
        if batch_size < 1:
            raise ValueError(f"teacher batch size must be >= 1, got {batch_size}")
        if kind not in TEACHER_KINDS:
            raise ValueError(f"unknown teacher {kind!r}; expected one of {', '.join(TEACHER_KINDS)}")
        self.model = model
        self.model_dir = Path(model_dir)
        self.batch_size = batch_size
        self.kind = kind
        self._fingerprint: str | None = None

    @classmethod
    def load(cls, model_dir: str | Path, device: str = "auto", batch_size: int = 16,
             kind: TeacherKind = "crops") -> FieldEmbedder:
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever downloaded at run time
        from find_ros.model import FindModel

        return cls(FindModel.from_pretrained(model_dir, device=device), model_dir, batch_size, kind)

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.model_dir)
        return self._fingerprint

    @property
    def dim(self) -> int:
        return int(self.model.embed_dim)

    @property
    def untrained(self) -> bool:
        return bool(self.model.untrained)

    # ---------------------------------------------------------------------------- image side

    @torch.inference_mode()
    def dense(self, images: Sequence[np.ndarray]) -> list[Tensor]:
        """Per image, its pixel embeddings on FIND's stride-4 grid over the resized image
        (ny, nx, D) — the cells of :func:`find_ros.fields.pyramid.dense_grid`. Images of different
        sizes in one batch are padded to a common size, which FIND sees: :meth:`teach` therefore
        encodes training images one at a time."""
        from find_ros.model import TokenSet

        out: list[Tensor] = []
        for start in range(0, len(images), self.batch_size):
            frames = self.model.encode_image([as_rgb(im) for im in images[start : start + self.batch_size]])
            empty = TokenSet.empty(self.dim, self.model.device, self.model.dtype)
            predictions = self.model.run(DENSE_TASK, frames, **{DENSE_PROMPT: empty}).predictions
            semantic = F.normalize(predictions.semantic[DENSE_PROPOSALS].float(), dim=-1)  # (B, Q, D)
            masks = predictions.masks[DENSE_PROPOSALS].float().sigmoid()  # (B, Q, H/4, W/4), padded input
            for b, (rh, rw) in enumerate(frames.resized_sizes):
                weights = masks[b, :, : math.ceil(rh / STRIDE), : math.ceil(rw / STRIDE)]
                pixel = torch.einsum("qhw,qd->hwd", weights, semantic[b])
                out.append(F.normalize(pixel, dim=-1).cpu())
        return out

    @torch.inference_mode()
    def images(self, images: Sequence[np.ndarray]) -> Tensor:
        """``embed_images`` of whole images (crops), ``batch_size`` at a time: (N, D)."""
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = [as_rgb(im) for im in images[start : start + self.batch_size]]
            out.append(self.model.embed_images(self.model.encode_image(batch)).float().cpu())
        if not out:
            return torch.zeros(0, self.dim)
        return torch.cat(out)

    def pyramid(self, image: np.ndarray, grids: Sequence[CropGrid]) -> list[Tensor]:
        """The crops teacher of one training image: per grid, the crops' embeddings (ny, nx, D)."""
        image = as_rgb(image)
        crops, counts = [], []
        for grid in grids:
            boxes = grid.boxes()
            crops.extend(image[y0:y1, x0:x1] for x0, y0, x1, y1 in boxes)
            counts.append(len(boxes))
        vectors = self.images(crops)
        out, start = [], 0
        for grid, n in zip(grids, counts):
            out.append(vectors[start : start + n].reshape(grid.ny, grid.nx, -1))
            start += n
        return out

    def teach(self, image: np.ndarray, grids: Sequence[CropGrid]) -> list[Tensor]:
        """The teacher of one training image on ``grids`` (one dense grid, or the crop pyramid)."""
        if self.kind == "crops":
            return self.pyramid(image, grids)
        (grid,) = grids
        embeddings = self.dense([image])[0]
        if tuple(embeddings.shape[:2]) != (grid.ny, grid.nx):
            raise ValueError(f"FIND's map is {tuple(embeddings.shape[:2])} cells; the dense grid expects "
                             f"{(grid.ny, grid.nx)}")
        return [embeddings]

    # ---------------------------------------------------------------------------- query side

    @torch.inference_mode()
    def texts(self, texts: Sequence[str]) -> Tensor:
        """FIND's language path (caption embeddings): (N, D)."""
        return self.model.embed_captions(list(texts)).float().cpu()

    def crop(self, crop: np.ndarray) -> Tensor:
        """An image crop as the teacher sees images: (1, D)."""
        if self.kind == "crops":
            return self.images([crop])
        cells = self.dense([crop])[0]
        ny, nx = cells.shape[:2]
        centre = cells[ny // 3 : max(ny // 3 + 1, ny - ny // 3), nx // 3 : max(nx // 3 + 1, nx - nx // 3)]
        return F.normalize(centre.reshape(-1, cells.shape[-1]).mean(0, keepdim=True), dim=-1)

    @torch.inference_mode()
    def instruction(self, text: str, crops: Sequence[np.ndarray] = ()) -> Tensor:
        """An interleaved instruction ("the box left of <0>" with crops): (1, D)."""
        encoded = self.model.encode_instruction(text, [as_rgb(c) for c in crops])
        return self.model.embed_instructions([encoded]).float().cpu()
