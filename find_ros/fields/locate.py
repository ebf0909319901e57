"""3D queries of a trained find-field: where in the scene is "the red cone" (or this crop, or this
interleaved instruction)?

1. **Cloud**: the run's surface point cloud with per-scale embeddings (:mod:`find_ros.fields.cloud`).
2. **Query**: embed it with the FIND model the field was distilled from (text: caption embedding;
   crop: the teacher's own image embedding; instruction: interleave embedding), score every point
   by relevancy against the canonical negatives, best scale per point.
3. **Locate** (``LocateSettings.method``): by default, FIND grounds the query in each view of the
   cloud and the best-matching views' masks, lifted through the surfaces rendered for those views,
   vote for cloud points (:mod:`find_ros.fields.grounded`: sharper than the distilled embeddings,
   see benchmarks/field_accuracy.py); or by the relevancy of step 2 alone.
4. **Region**: the highest-scoring points (top ``top_fraction``) are clustered (DBSCAN, eps a few
   voxels); the cluster with the largest total score is the answer: its score-weighted centre and
   its axis-aligned box, in the dataset's world frame when the run has the dataparser transform
   (else nerfstudio's normalised frame; the answer says which).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from find_ros.fields.cloud import FEATURE_CHUNK
from find_ros.fields.grounded import ground_views, training_images, vote
from find_ros.fields.loading import LoadedRun
from find_ros.fields.query import FieldCloud, LocateSettings, Query
from find_ros.fields.relevancy import colorize, over_scales

@dataclass
class Region:
    """The answer in the cloud's frame: relevancy-weighted centre, the member points' indices into
    the cloud, their best relevancy and median best scale."""

    center: np.ndarray
    members: np.ndarray
    score: float
    scale: float


def embed_query(model: Any, query: Query) -> Tensor:
    """The query's unit embedding (D,), from the FIND model the field was distilled from."""
    embedder = model.embedder()
    if query.kind == "text":
        return embedder.texts([query.text])[0]
    if query.kind == "crop":
        return embedder.crop(query.crops[0])[0]
    return embedder.instruction(query.text, query.crops)[0]


def score_cloud(model: Any, cloud: FieldCloud, embedding: Tensor) -> tuple[Tensor, Tensor]:
    """Relevancy (N,) of every cloud point, and the index of its best scale (N,)."""
    negatives = model.negative_embeddings().cpu()
    rel, best = [], []
    for chunk in cloud.features.split(FEATURE_CHUNK):
        r, b = over_scales(chunk.float(), embedding.cpu(), negatives, model.config.relevancy_temperature)
        rel.append(r)
        best.append(b)
    return torch.cat(rel), torch.cat(best)


def locate(points: np.ndarray, relevancy: np.ndarray, scales: np.ndarray, voxel: float, *,
           top_fraction: float, min_points: int = 8) -> Region:
    """The best-matching region: the densest-relevance cluster among the ``top_fraction`` most
    relevant points."""
    import open3d as o3d

    if not 0 < top_fraction <= 1:
        raise ValueError(f"top fraction must be in (0, 1], got {top_fraction}")
    n = len(relevancy)
    k = min(n, max(min_points, math.ceil(top_fraction * n)))
    top = np.argsort(-relevancy, kind="stable")[:k]
    candidates, weights = points[top], relevancy[top]
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(candidates.astype(np.float64)))
    labels = np.asarray(cloud.cluster_dbscan(eps=3.0 * voxel, min_points=3, print_progress=False))
    if (labels >= 0).any():
        totals = {label: weights[labels == label].sum() for label in set(labels.tolist()) if label >= 0}
        chosen = labels == max(totals, key=totals.get)
    else:
        chosen = np.ones(k, dtype=bool)
    w = weights[chosen]
    center = (candidates[chosen] * w[:, None]).sum(0) / max(float(w.sum()), 1e-12)
    return Region(center=center, members=top[chosen], score=float(w.max()), scale=float(np.median(scales[top][chosen])))


def _apply(transform: np.ndarray | None, points: np.ndarray) -> np.ndarray:
    if transform is None:
        return points
    return points @ transform[:3, :3].T + transform[:3, 3]


def write_ply(path: str | Path, points: np.ndarray, relevancy: np.ndarray) -> Path:
    """An open3d point cloud coloured by relevancy (turbo colours)."""
    import open3d as o3d

    path = Path(path)
    if path.suffix.lower() != ".ply":
        raise ValueError(f"{path}: the point cloud is written as PLY; use a .ply name")
    path.parent.mkdir(parents=True, exist_ok=True)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    cloud.colors = o3d.utility.Vector3dVector(colorize(torch.from_numpy(relevancy)).numpy().astype(np.float64))
    if not o3d.io.write_point_cloud(str(path), cloud):
        raise ValueError(f"{path}: open3d could not write the point cloud")
    return path


def answer(run: LoadedRun, query: Query, *, cloud: FieldCloud, out: str | Path | None = None,
           settings: LocateSettings | None = None) -> dict[str, Any]:
    """Locate ``query`` in the run's scene; write the scored cloud to ``out`` (PLY) if given.
    ``settings.method``: "grounding" (FIND's grounding in the cloud's rendered views, lifted into
    the cloud and voted, :mod:`find_ros.fields.grounded`), or "relevancy" of the field's embeddings
    to the query's alone. benchmarks/field_accuracy.py measures both."""
    settings = settings or LocateSettings()
    method = settings.method
    embedding = embed_query(run.model, query)
    rel, best = score_cloud(run.model, cloud, embedding)
    points = cloud.points.numpy().astype(np.float64)
    scales = cloud.scales.numpy()[best.numpy()]
    extra: dict[str, Any] = {}
    if method == "grounding":
        grounded = ground_views(run.model.embedder().model, training_images(run, cloud), query)
        score, kept = vote(cloud, grounded, settings.votes)
        if not score.any():
            raise ValueError("FIND grounded the query in none of the views (every mask empty)")
        views = run.pipeline.datamanager.train_dataset.image_filenames
        extra["grounded_views"] = [{"image": Path(views[int(cloud.view_index[g.view])]).name,
                                    "match": round(g.match, 4), "mask_pixels": int(g.mask.sum())} for g in kept]
    else:
        score = rel.numpy().astype(np.float64)
    region = locate(points, score, scales, cloud.voxel, top_fraction=settings.top_fraction)
    transform = run.world_from_nerfstudio()
    members = _apply(transform, points[region.members])  # the box is axis-aligned in the reported frame
    unit = 1.0 if transform is None else float(np.cbrt(abs(np.linalg.det(transform[:3, :3]))))
    result: dict[str, Any] = {
        "query": {"kind": query.kind, "text": query.text, "label": query.label or query.text},
        "frame": "world" if transform is not None else "nerfstudio",
        "frame_note": ("the dataset's own world frame (nerfstudio's dataparser transform undone)"
                       if transform is not None
                       else "nerfstudio's normalised frame: the run has no dataparser_transforms.json"),
        "center": _apply(transform, region.center[None])[0].round(6).tolist(),
        "box": {"min": members.min(0).round(6).tolist(), "max": members.max(0).round(6).tolist()},
        "method": method,
        "score": round(region.score, 6),
        "relevancy": round(float(rel[region.members].max()), 6),
        "region_points": int(len(region.members)),
        "scale": round(region.scale * unit, 6),
        "cloud_points": int(points.shape[0]),
        "step": run.step,
    }
    result.update(extra)
    if out is not None:
        result["ply"] = str(write_ply(out, _apply(transform, points), score))
    return result
