"""The data of a find-field query: what it looks for (text, an image crop, or an interleaved
instruction), the point cloud it is answered in, and the settings of both.

Plain data, numpy only: the cloud is rendered in :mod:`find_ros.fields.cloud`, a query is located
in :mod:`find_ros.fields.locate` (by FIND's grounding in the views, :mod:`find_ros.fields.grounded`,
or by relevancy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

LOCATE_METHODS = ("relevancy", "grounding")


@dataclass(frozen=True)
class CloudSettings:
    views: int = 16
    """Training cameras rendered (evenly spread over the sequence)."""
    max_side: int = 96
    """Long side of each rendering, pixels."""
    min_accumulation: float = 0.5
    """Rays whose accumulated opacity is lower hit nothing solid and give no point."""
    voxels: int = 384
    """Voxel size = diagonal of the cloud's robust bounding box / voxels."""

    def __post_init__(self) -> None:
        if self.views < 1 or self.max_side < 8 or self.voxels < 1 or not 0 <= self.min_accumulation < 1:
            raise ValueError(f"invalid cloud settings {self}")


@dataclass
class FieldCloud:
    """Surface points (nerfstudio frame) with colours and per-scale embeddings (N, S, D), and the
    rendered views they came from: ``view_index`` (V,) training-camera indices, ``view_points``
    (V, H, W, 3) each pixel's surface point (NaN where the ray hit nothing solid; a view smaller than
    the largest is padded with NaN), ``view_sizes`` (V, 2) each view's own (H, W): a 2D mask in a
    view lifts to 3D without rendering again."""

    points: Tensor
    colors: Tensor
    features: Tensor
    scales: Tensor
    voxel: float
    view_index: Tensor
    view_points: Tensor
    view_sizes: Tensor


@dataclass(frozen=True)
class VoteSettings:
    views: int = 5
    """Views (those that match the query best) whose grounded masks vote."""
    radius_voxels: float = 2.5
    """A cloud point takes a view's vote within this many voxels of the view's lifted mask."""

    def __post_init__(self) -> None:
        if self.views < 1 or self.radius_voxels <= 0:
            raise ValueError(f"invalid vote settings {self}")


@dataclass(frozen=True)
class LocateSettings:
    method: str = "grounding"
    """Either "grounding": FIND grounds the query in the cloud's rendered views and the views that match
    best vote in 3D; "relevancy": the field's embeddings alone."""
    top_fraction: float = 0.005
    """Fraction of the highest-scoring points clustered into the answer."""
    votes: VoteSettings = field(default_factory=VoteSettings)

    def __post_init__(self) -> None:
        if self.method not in LOCATE_METHODS:
            raise ValueError(f"unknown locate method {self.method!r}; expected one of {', '.join(LOCATE_METHODS)}")
        if not 0 < self.top_fraction <= 1:
            raise ValueError(f"top fraction must be in (0, 1], got {self.top_fraction}")


@dataclass
class Query:
    """What to look for: ``kind`` "text", "crop" or "instruction" (text with ``<k>`` placeholders
    for ``crops``)."""

    kind: str
    text: str = ""
    crops: list[np.ndarray] = field(default_factory=list)
    label: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("text", "crop", "instruction"):
            raise ValueError(f"unknown query kind {self.kind!r}")
        if self.kind == "text" and not self.text.strip():
            raise ValueError("a text query needs text")
        if self.kind == "crop" and len(self.crops) != 1:
            raise ValueError("a crop query takes exactly one crop (use an instruction to combine several)")
        if self.kind == "instruction" and not self.text.strip():
            raise ValueError("an instruction query needs its text")


def parse_query(text: str | None, crops: Sequence[np.ndarray], instruction: str | None, label: str = "") -> Query:
    """The one query that the CLI's --text / --crop / --instruction describe."""
    if text is not None and instruction is not None:
        raise ValueError("give --text or --instruction, not both")
    if text is not None:
        if crops:
            raise ValueError("--crop goes with --instruction (or alone), not with --text")
        return Query("text", text=text, label=label)
    if instruction is not None:
        return Query("instruction", text=instruction, crops=list(crops), label=label)
    if len(crops) == 1:
        return Query("crop", crops=list(crops), label=label)
    if not crops:
        raise ValueError("nothing to look for: give --text, --crop or --instruction")
    raise ValueError("several --crop need an --instruction that places them (<0>, <1>, ...)")
