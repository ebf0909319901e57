"""Locating a query by FIND's own grounding in the training views, lifted into the field's cloud.

The distilled feature field answers "where is X" by relevancy of its per-point embeddings, and that
is only as sharp as its teacher: a crop embedding at the smallest scale already spans neighbouring
objects, and a caption embedding hardly prefers an object's crop over a wall's. FIND itself is
sharper in 2D: its interleave grounding finds the object in a view and says how well it matched
(the match logit, comparable across views). So, for a query:

1. ground it in every view the cloud was rendered from (text as ``[text]``, a crop as ``<0>``, an
   instruction as it is; its first entity is the answer);
2. keep the ``views`` views with the highest match logit: the ones that show the object best;
3. lift each kept mask to 3D through the surface points the field rendered for that view (its
   depth: no new rendering), and let every cloud point count the kept views whose lifted mask lies
   within ``radius_voxels`` of it. Views that grounded the wrong object vote for different places,
   so the object most views agree on wins.

The vote (0-1, the share of kept views) is the score the region read-out and the PLY use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from find_ros.fields.query import FieldCloud, Query, VoteSettings
from find_ros.model.results import rank_by_match


@dataclass
class GroundedView:
    view: int  # position in cloud.view_index
    match: float
    mask: np.ndarray  # bool, the training image's size


def instruction_for(query: Query) -> tuple[str, list[np.ndarray]]:
    """The interleaved instruction that grounds ``query``: its first entity is what is looked for."""
    if query.kind == "text":
        return f"[{query.text.replace('[', '(').replace(']', ')')}]", []
    if query.kind == "crop":
        return "<0>", list(query.crops)
    return query.text, list(query.crops)


def ground_views(find_model: Any, images: list[np.ndarray], query: Query) -> list[GroundedView]:
    """The query grounded in each image (FindModel's interleave grounding, instruction encoded once)."""
    text, crops = instruction_for(query)
    instruction = find_model.encode_instruction(text, crops)
    grounded = []
    for k, rgb in enumerate(images):
        result = find_model.ground(find_model.encode_image(rgb), instruction)[0]
        grounded.append(GroundedView(k, result.match(0), np.asarray(result.entities[0].mask, dtype=bool)))
    return grounded


def _lift(cloud: FieldCloud, view: GroundedView) -> np.ndarray:
    """The surface points (nerfstudio frame) under a view's mask, at the cloud's rendering size."""
    import cv2

    height, width = (int(v) for v in cloud.view_sizes[view.view])
    surface = cloud.view_points[view.view, :height, :width].numpy()
    mask = cv2.resize(view.mask.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA) >= 0.5
    lifted = surface[mask]
    return lifted[np.isfinite(lifted).all(axis=1)].astype(np.float64)


def vote(cloud: FieldCloud, grounded: list[GroundedView], settings: VoteSettings) -> tuple[np.ndarray, list[GroundedView]]:
    """Per cloud point, the share of the best-matching views whose lifted mask lies near it (N,),
    and those views, best first."""
    from scipy.spatial import cKDTree

    kept = [grounded[i] for i in rank_by_match([g.match for g in grounded])[: settings.views]]
    points = cloud.points.numpy().astype(np.float64)
    votes = np.zeros(len(points))
    radius = settings.radius_voxels * cloud.voxel
    for view in kept:
        lifted = _lift(cloud, view)
        if len(lifted):
            distance, _ = cKDTree(lifted).query(points, distance_upper_bound=radius)
            votes += np.isfinite(distance)
    return votes / max(len(kept), 1), kept


def training_images(run: Any, cloud: FieldCloud) -> list[np.ndarray]:
    """The training images the cloud's views were rendered for (RGB uint8)."""
    from find_ros.image_io import read_rgb

    files = run.pipeline.datamanager.train_dataset.image_filenames
    return [read_rgb(files[int(i)]) for i in cloud.view_index]
