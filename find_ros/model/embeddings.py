"""The values that flow between FindModel's steps: encoded images, token prompts, instructions, and
the inputs that point into an image (regions, spatial prompts, visual-context classes).

An :class:`ImageEmbeddings` is computed once per frame and reused by every task; an
:class:`InstructionEmbeddings` once per instruction and reused across frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from find_ros.instructions import Entity, ParsedInstruction


@dataclass
class ImageEmbeddings:
    """A batch of encoded images.

    ``levels``: interface features at strides 32, 16, 8, each (B, D, H/s, W/s); ``pixel``: pixel
    embeddings M_I at stride 4, (B, mask_dim, H/4, W/4), where (H, W) is the padded network input.
    Image i was resized by ``resized_sizes[i] / image_sizes[i]`` and sits at the top-left.
    """

    levels: tuple[Tensor, ...]
    pixel: Tensor
    image_sizes: tuple[tuple[int, int], ...]
    resized_sizes: tuple[tuple[int, int], ...]

    @property
    def batch_size(self) -> int:
        return int(self.pixel.shape[0])

    @property
    def input_size(self) -> tuple[int, int]:
        return int(self.pixel.shape[-2]) * 4, int(self.pixel.shape[-1]) * 4

    @property
    def device(self) -> torch.device:
        return self.pixel.device

    def scale(self, index: int) -> tuple[float, float]:
        """(sy, sx): network-input pixels per original pixel of image ``index``."""
        (h, w), (rh, rw) = self.image_sizes[index], self.resized_sizes[index]
        return rh / h, rw / w

    def select(self, indices: int | Sequence[int]) -> ImageEmbeddings:
        idx = [indices] if isinstance(indices, int) else list(indices)
        for i in idx:
            if not 0 <= i < self.batch_size:
                raise ValueError(f"image index {i} out of range for a batch of {self.batch_size}")
        t = torch.as_tensor(idx, device=self.device)
        return ImageEmbeddings(
            levels=tuple(level.index_select(0, t) for level in self.levels),
            pixel=self.pixel.index_select(0, t),
            image_sizes=tuple(self.image_sizes[i] for i in idx),
            resized_sizes=tuple(self.resized_sizes[i] for i in idx),
        )


@dataclass
class TokenSet:
    """A token prompt in interface space, split into groups (classes, captions, entities, objects).

    ``tokens`` (B, N, D), B == 1 meaning shared by every image of a batch; ``groups`` (G, N) bool:
    token j belongs to group g (groups may overlap). A query declared ``per_group_of`` this prompt
    gets one query per group and sees only that group's tokens. ``pixel_refs`` (B, G, mask_dim) with
    ``has_pixel_ref`` (G,): a pixel-space reference for groups that are image regions (visual
    entities), which grounding matches against proposals' pixel embeddings. ``per_level`` (one
    (B, N, D) tensor per feature level): tokens the interface takes afresh at each layer from that
    layer's level instead of carrying them on (the authors' point samples; ``tokens`` is level 0's).
    ``positions`` (B, N, D): the tokens' positional part where it is not their initial value (the
    authors' legend tokens).
    """

    tokens: Tensor
    groups: Tensor
    labels: tuple[str, ...]
    pixel_refs: Tensor | None = None
    has_pixel_ref: Tensor | None = None
    per_level: tuple[Tensor, ...] | None = None
    positions: Tensor | None = None

    def __post_init__(self) -> None:
        if self.tokens.dim() != 3:
            raise ValueError(f"TokenSet tokens must be (B, N, D), got {tuple(self.tokens.shape)}")
        if self.groups.dim() != 2 or self.groups.shape[1] != self.tokens.shape[1]:
            raise ValueError(f"TokenSet groups must be (G, {self.tokens.shape[1]}), got {tuple(self.groups.shape)}")
        if len(self.labels) != self.groups.shape[0]:
            raise ValueError(f"TokenSet has {self.groups.shape[0]} groups but {len(self.labels)} labels")

    @property
    def num_groups(self) -> int:
        return int(self.groups.shape[0])

    @property
    def num_tokens(self) -> int:
        return int(self.tokens.shape[1])

    @staticmethod
    def empty(dim: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> TokenSet:
        return TokenSet(torch.zeros(1, 0, dim, device=device, dtype=dtype),
                        torch.zeros(0, 0, dtype=torch.bool, device=device), ())

    @staticmethod
    def cat(sets: Sequence[TokenSet]) -> TokenSet:
        """Concatenate token sets (groups stay separate). Batch sizes must agree or be 1."""
        if not sets:
            raise ValueError("nothing to concatenate")
        batch = max(s.tokens.shape[0] for s in sets)
        if any(s.tokens.shape[0] not in (1, batch) for s in sets):
            raise ValueError("token sets with different batch sizes")
        tokens = torch.cat([s.tokens.expand(batch, -1, -1) for s in sets], dim=1)
        groups = torch.block_diag(*[s.groups.to(torch.uint8) for s in sets]).bool()
        refs = None
        if any(s.pixel_refs is not None for s in sets):
            dim = next(s.pixel_refs.shape[-1] for s in sets if s.pixel_refs is not None)
            refs = torch.cat([s.pixel_refs.expand(batch, -1, -1) if s.pixel_refs is not None else
                              s.tokens.new_zeros(batch, s.num_groups, dim) for s in sets], dim=1)
            has = torch.cat([s.has_pixel_ref if s.has_pixel_ref is not None else
                             torch.zeros(s.num_groups, dtype=torch.bool, device=s.tokens.device) for s in sets])
        else:
            has = None
        per_level = None
        if any(s.per_level is not None for s in sets):
            levels = max(len(s.per_level) for s in sets if s.per_level is not None)
            per_level = tuple(torch.cat([(s.per_level[min(l, len(s.per_level) - 1)] if s.per_level is not None else s.tokens)
                                         .expand(batch, -1, -1) for s in sets], dim=1) for l in range(levels))
        positions = None
        if any(s.positions is not None for s in sets):
            positions = torch.cat([(s.tokens if s.positions is None else s.positions).expand(batch, -1, -1) for s in sets], dim=1)
        return TokenSet(tokens, groups, tuple(label for s in sets for label in s.labels), refs, has, per_level, positions)


@dataclass
class InstructionEmbeddings:
    """An interleaved instruction as interface tokens: the sentence's token embeddings with each
    visual entity's embedding in place of its placeholder.

    ``entity_groups[e, j]``: token j belongs to entity e (a text entity's own words; a visual
    entity's single token; the referring-expression entity of a plain instruction: all tokens).
    """

    instruction: ParsedInstruction
    tokens: Tensor  # (T, D)
    entity_groups: Tensor  # (E, T) bool
    entity_is_visual: tuple[bool, ...]
    pixel_refs: Tensor  # (E, mask_dim); zero rows for text entities
    # The authors' instructions (decoder style "official"): the legend tokens' positional part
    # (T, D), and the visual entities' point samples, taken from the image each entity points
    # into (a frame region, or the crop itself), grouped by entity and re-read per level.
    positions: Tensor | None = None
    samples: TokenSet | None = None

    @property
    def entities(self) -> tuple[Entity, ...]:
        return self.instruction.entities

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(e.label for e in self.instruction.entities)

    def token_set(self, group_by: Literal["entity", "item"] = "entity") -> TokenSet:
        """Groups per entity (grounding) or one group for the whole instruction (retrieval)."""
        tokens = self.tokens.unsqueeze(0)
        positions = None if self.positions is None else self.positions.unsqueeze(0)
        if group_by == "entity":
            return TokenSet(tokens, self.entity_groups, self.labels, self.pixel_refs.unsqueeze(0),
                            torch.tensor(self.entity_is_visual, dtype=torch.bool, device=self.tokens.device),
                            positions=positions)
        groups = torch.ones(1, self.tokens.shape[0], dtype=torch.bool, device=self.tokens.device)
        return TokenSet(tokens, groups, (self.instruction.text,), positions=positions)

    def sample_set(self) -> TokenSet:
        """The point samples as a token set with one group per entity (none for text entities)."""
        if self.samples is not None:
            return self.samples
        dim = self.tokens.shape[-1]
        empty = self.tokens.new_zeros(1, 0, dim)
        return TokenSet(empty, torch.zeros(len(self.entities), 0, dtype=torch.bool, device=self.tokens.device),
                        self.labels, per_level=(empty,))


@dataclass(frozen=True, eq=False)  # identity equality: the fields hold tensors
class RegionRef:
    """A region of an already encoded image: "this box in an earlier frame".

    ``box`` is [x0, y0, x1, y1] in that image's original pixels (x1, y1 exclusive); ``mask`` an
    optional (H, W) bool array at the image's original size, used instead of the box.
    """

    image: ImageEmbeddings
    box: tuple[float, float, float, float] | None = None
    mask: np.ndarray | None = None
    index: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.image, ImageEmbeddings):
            raise ValueError("RegionRef.image must be ImageEmbeddings from FindModel.encode_image")
        if not 0 <= self.index < self.image.batch_size:
            raise ValueError(f"RegionRef.index {self.index} out of range for a batch of {self.image.batch_size}")
        if (self.box is None) == (self.mask is None):
            raise ValueError("RegionRef needs exactly one of box or mask")
        h, w = self.image.image_sizes[self.index]
        if self.box is not None:
            box = [float(v) for v in self.box]
            if len(box) != 4 or not all(np.isfinite(box)):
                raise ValueError(f"RegionRef.box must be four finite numbers [x0, y0, x1, y1], got {self.box!r}")
            x0, y0, x1, y1 = box
            if not (x1 > x0 and y1 > y0):
                raise ValueError(f"RegionRef.box {box} is empty: need x1 > x0 and y1 > y0")
            if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
                raise ValueError(f"RegionRef.box {box} lies outside the {w}x{h} image")
        else:
            m = np.asarray(self.mask)
            if m.shape != (h, w):
                raise ValueError(f"RegionRef.mask has shape {m.shape}; the image is {(h, w)}")
            if not m.any():
                raise ValueError("RegionRef.mask is empty")


@dataclass(frozen=True)
class SpatialPrompt:
    """An interactive prompt on an image, in its original pixels: a point (x, y), a box
    [x0, y0, x1, y1], a scribble (K, 2) polyline of (x, y), or a (H, W) bool mask. Prompts with the
    same ``group`` describe one object (one query, one mask); ``positive=False`` marks where the
    object is not."""

    kind: Literal["point", "box", "scribble", "mask"]
    data: np.ndarray
    positive: bool = True
    group: int = 0

    def __post_init__(self) -> None:
        data = np.asarray(self.data)
        expected = {"point": (2,), "box": (4,)}
        if self.kind in expected and data.shape != expected[self.kind]:
            raise ValueError(f"{self.kind} prompt needs shape {expected[self.kind]}, got {data.shape}")
        if self.kind == "scribble" and (data.ndim != 2 or data.shape[1] != 2 or len(data) < 1):
            raise ValueError(f"scribble prompt needs shape (K, 2), got {data.shape}")
        if self.kind == "mask" and data.ndim != 2:
            raise ValueError(f"mask prompt needs shape (H, W), got {data.shape}")
        if self.kind not in ("point", "box", "scribble", "mask"):
            raise ValueError(f"unknown spatial prompt kind {self.kind!r}")
        if self.kind != "mask" and not np.isfinite(data.astype(float)).all():
            raise ValueError(f"{self.kind} prompt has non-finite coordinates")
        if self.kind == "box" and not (data[2] > data[0] and data[3] > data[1]):
            raise ValueError(f"box prompt {data.tolist()} is empty")
        if self.group < 0:
            raise ValueError("spatial prompt group must be >= 0")


@dataclass(frozen=True, eq=False)
class VisualClass:
    """A class given by example regions instead of a name (visual context): its embedding is the
    mean of the regions' embeddings."""

    name: str
    regions: tuple[RegionRef, ...]

    def __post_init__(self) -> None:
        if not self.regions:
            raise ValueError(f"visual class {self.name!r} has no example regions")

