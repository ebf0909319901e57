"""What the read-outs return — plain numpy/python values at the original image size, JSON-ready —
and the settings of generic segmentation's read-out. Plain data: this module imports no torch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from find_ros.model.presence import PresenceSignals

if TYPE_CHECKING:
    from torch import Tensor


def mask_box(mask: np.ndarray) -> list[int] | None:
    """[x0, y0, x1, y1] of a boolean mask in pixels (x1, y1 exclusive); None when the mask is empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if not len(xs):
        return None
    return [int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1]


@dataclass
class EntityMask:
    """The answer for one entity (or phrase, or clicked object): the chosen proposal's mask.

    ``score`` is the chosen proposal's probability among all proposals (softmax of the matching
    logits), ``box`` the mask's box or None when the mask is empty. ``is_visual``: the target is an
    image region (matched in pixel space); ``visual_index``: k when it is an instruction's ``<k>``.
    ``confidence`` is the calibrated probability that the entity is in view at all and ``found``
    whether it passed the model's presence threshold (:mod:`find_ros.model.presence`); the mask is
    the chosen proposal's either way, and surfaces show it only when ``found``.
    """

    label: str
    score: float
    mask: np.ndarray  # (H, W) bool at the original image size
    proposal: int
    is_visual: bool = False
    box: list[int] | None = field(default=None)
    # The chosen proposal's matching logit (scaled cosine): unlike ``score``, comparable across
    # images, so it tells in which of several frames the entity is seen best.
    match: float = 0.0
    visual_index: int | None = None
    found: bool = True
    confidence: float = 1.0
    signals: PresenceSignals | None = None  # what ``confidence`` was computed from

    def __post_init__(self) -> None:
        if self.box is None:
            self.box = mask_box(self.mask)

    @property
    def mask_area(self) -> int:
        return int(self.mask.sum())

    def found_at(self, threshold: float | None = None) -> bool:
        """``found`` at the model's presence threshold (None), or at another ``threshold`` on ``confidence``."""
        return self.found if threshold is None else self.confidence >= threshold

    def to_dict(self) -> dict[str, object]:
        return {"label": self.label, "found": bool(self.found), "confidence": round(float(self.confidence), 6),
                "score": round(float(self.score), 6), "box": self.box, "mask_area": self.mask_area}


@dataclass
class GroundingResult:
    image_size: tuple[int, int]
    entities: list[EntityMask]

    def to_dict(self) -> dict[str, object]:
        return {"image_size": list(self.image_size), "entities": [e.to_dict() for e in self.entities]}

    def match(self, entity: int | None = None) -> float:
        """How well this image shows the instruction, comparable across images: the match logit of
        entity ``entity``, or the mean over all entities (a small object barely moves a whole-image
        embedding, but its own proposal matches it sharply)."""
        if entity is not None:
            return float(self.entities[entity].match)
        return float(np.mean([e.match for e in self.entities])) if self.entities else float("-inf")

    def confidence(self) -> float:
        """Probability that this image shows the instruction: that of its least certain entity (the
        instruction is in view when every entity is), calibrated, so comparable across images."""
        return float(min(e.confidence for e in self.entities)) if self.entities else 0.0

    def presence_rank(self) -> tuple[float, float]:
        """Sort key of images for an instruction: presence first, so a frame that does not show an
        entity never ranks above one that clearly does; the match logit breaks ties."""
        return (self.confidence(), self.match())


def rank_by_match(matches: Sequence[float | tuple[float, ...] | None]) -> list[int]:
    """Positions of images, best first by a comparable key (a match logit,
    :meth:`GroundingResult.match`, or :meth:`GroundingResult.presence_rank`), ties in the given
    order; an image that could not be grounded (None) ranks after every grounded one."""
    judged = sorted((i for i, m in enumerate(matches) if m is not None), key=lambda i: matches[i], reverse=True)
    return judged + [i for i, m in enumerate(matches) if m is None]


@dataclass
class Segment:
    id: int  # value of this segment in the panoptic map
    label: str
    class_index: int
    score: float
    area: int
    box: list[int] | None
    is_thing: bool

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "label": self.label, "class_index": self.class_index, "score": round(self.score, 6),
                "area": self.area, "box": self.box, "is_thing": self.is_thing}


@dataclass
class Instance:
    label: str
    class_index: int
    score: float
    mask: np.ndarray  # (H, W) bool

    @property
    def box(self) -> list[int] | None:
        return mask_box(self.mask)

    def to_dict(self) -> dict[str, object]:
        return {"label": self.label, "class_index": self.class_index, "score": round(self.score, 6),
                "box": self.box, "mask_area": int(self.mask.sum())}


SEGMENTATION_MODES = ("panoptic", "semantic", "instance")


@dataclass(frozen=True)
class SegmentationSettings:
    """How generic segmentation reads its proposals out (Mask2Former's inference)."""

    object_threshold: float = 0.8
    """Minimum class score of a panoptic segment."""
    overlap_threshold: float = 0.8
    """Minimum share of a segment's mask that must stay visible after overlaps are resolved."""
    top_k: int = 100
    """Instances kept (the top-scoring query-class pairs)."""
    modes: tuple[str, ...] = SEGMENTATION_MODES
    """Which of panoptic, semantic and instance to compute."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "modes", tuple(self.modes))
        bad = set(self.modes) - set(SEGMENTATION_MODES)
        if bad:
            raise ValueError(f"unknown segmentation mode(s) {sorted(bad)}")
        for name in ("object_threshold", "overlap_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be positive, got {self.top_k}")


@dataclass
class SegmentationResult:
    """Generic segmentation of one image over ``labels``. ``panoptic``: (H, W) int32 segment ids,
    0 = no segment; ``semantic``: (H, W) int32 class index per pixel; ``instances``: top-scoring
    (class, mask) pairs. A part is None/empty when it was not asked for."""

    image_size: tuple[int, int]
    labels: tuple[str, ...]
    panoptic: np.ndarray | None
    segments: list[Segment]
    semantic: np.ndarray | None
    instances: list[Instance]

    def to_dict(self) -> dict[str, object]:
        return {"image_size": list(self.image_size), "labels": list(self.labels),
                "segments": [s.to_dict() for s in self.segments],
                "instances": [i.to_dict() for i in self.instances],
                "semantic_classes_present": sorted({int(c) for c in np.unique(self.semantic)}) if self.semantic is not None else None}


@dataclass
class RetrievalResult:
    """Cosine similarities between images (rows) and queries (columns): captions or instructions."""

    similarity: np.ndarray  # (num_images, num_queries)
    image_embeddings: Tensor  # (num_images, D), unit length
    query_embeddings: Tensor  # (num_queries, D), unit length

    def ranking(self, query: int, top_k: int | None = None) -> list[tuple[int, float]]:
        """Images for query ``query``, best first: (image index, similarity)."""
        column = self.similarity[:, query]
        order = np.argsort(-column, kind="stable")[: top_k or len(column)]
        return [(int(i), float(column[i])) for i in order]
