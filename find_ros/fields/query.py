"""3D queries of a trained find-field: where in the scene is "the red cone" (or this crop, or this
interleaved instruction)?

1. **Cloud** (once per checkpoint, cached in the run directory): render the training cameras at a
   reduced size, back-project every ray with enough accumulation to its surface point (origin +
   direction x median depth — the points the feature head was trained on), average into voxels,
   and evaluate the feature head at every point for each query scale; each view's per-pixel
   surface points are kept too, for lifting 2D masks.
2. **Query**: embed it with the FIND model the field was distilled from (text: caption embedding;
   crop: the teacher's own image embedding; instruction: interleave embedding), score every point
   by relevancy against the canonical negatives, best scale per point.
3. **Locate** (``method``): by default, FIND grounds the query in each view of the cloud and the
   best-matching views' masks, lifted through the surfaces rendered for those views, vote for
   cloud points (:mod:`find_ros.fields.grounded`: sharper than the distilled embeddings, see
   benchmarks/field_accuracy.py); or by the relevancy of step 2 alone.
4. **Region**: the highest-scoring points (top ``top_fraction``) are clustered (DBSCAN, eps a few
   voxels); the cluster with the largest total score is the answer: its score-weighted centre and
   its axis-aligned box, in the dataset's world frame when the run has the dataparser transform
   (else nerfstudio's normalised frame; the answer says which).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from find_ros.fields.loading import LoadedRun
from find_ros.fields.relevancy import colorize, over_scales

CLOUD_FORMAT = "find_ros.fields/cloud/2"
CLOUD_FILE = "find_field_cloud.safetensors"
FEATURE_CHUNK = 1 << 15


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


@dataclass
class Region:
    """The answer in the cloud's frame: relevancy-weighted centre, the member points' indices into
    the cloud, their best relevancy and median best scale."""

    center: np.ndarray
    members: np.ndarray
    score: float
    scale: float


# ------------------------------------------------------------------------------------- the cloud


def _voxel_average(points: Tensor, colors: Tensor, voxel: float) -> tuple[Tensor, Tensor]:
    keys = torch.floor(points / voxel).long()
    _, inverse = torch.unique(keys, dim=0, return_inverse=True)
    count = torch.bincount(inverse).unsqueeze(-1).float()
    mean = lambda v: torch.zeros(count.shape[0], v.shape[1]).index_add_(0, inverse, v) / count  # noqa: E731
    return mean(points), mean(colors)


@torch.no_grad()
def render_cloud(model: Any, cameras: Any, settings: CloudSettings, progress: bool = True) -> FieldCloud:
    """The surface point cloud of ``cameras`` (nerfstudio Cameras) as the field sees it."""
    from tqdm import tqdm

    count = len(cameras)
    chosen = sorted({int(round(i)) for i in np.linspace(0, count - 1, min(settings.views, count))})
    points, colors, per_view = [], [], []
    for index in tqdm(chosen, desc="rendering views", unit="view", disable=not progress):
        camera = cameras[index : index + 1]
        factor = min(1.0, settings.max_side / float(max(int(camera.width), int(camera.height))))
        camera.rescale_output_resolution(factor)
        bundle = camera.generate_rays(camera_indices=0, keep_shape=True).to(model.device)
        outputs = model.get_outputs_for_camera_ray_bundle(bundle)
        keep = (outputs["accumulation"][..., 0] > settings.min_accumulation).to(model.device)
        surface = model.surface_points(bundle, outputs["depth"].to(model.device))
        points.append(surface[keep].float().cpu())
        colors.append(outputs["rgb"].to(model.device)[keep].float().cpu())
        per_view.append(torch.where(keep[..., None], surface, torch.nan).float().cpu())
    all_points, all_colors = torch.cat(points), torch.cat(colors)
    height, width = max(v.shape[0] for v in per_view), max(v.shape[1] for v in per_view)
    view_points = torch.full((len(per_view), height, width, 3), torch.nan)
    for k, v in enumerate(per_view):
        view_points[k, : v.shape[0], : v.shape[1]] = v
    if all_points.shape[0] == 0:
        raise ValueError("the field renders no solid surface from its training cameras: is it trained?")
    # Voxel size from the robust extent (1st-99th percentile): a few rays escaping through an
    # opening to the far plane must not coarsen the whole cloud.
    sample = all_points[:: max(1, all_points.shape[0] // 1_000_000)]  # torch.quantile takes < 2^24 values
    span = torch.quantile(sample, torch.tensor([0.01, 0.99]), dim=0)
    voxel = max(float((span[1] - span[0]).norm()) / settings.voxels, 1e-6)
    all_points, all_colors = _voxel_average(all_points, all_colors, voxel)
    scales = model.query_scale_values().float()
    features = torch.cat([model.feature_field.at_scales(chunk.to(model.device), scales.to(model.device)).half().cpu()
                          for chunk in all_points.split(FEATURE_CHUNK)])
    sizes = torch.tensor([v.shape[:2] for v in per_view])
    return FieldCloud(all_points, all_colors, features, scales.cpu(), voxel, torch.tensor(chosen), view_points, sizes)


def cloud_for_run(run: LoadedRun, settings: CloudSettings, *, reuse: bool = True,
                  progress: bool = True) -> tuple[FieldCloud, bool]:
    """The run's cloud, read from the run directory when it was built from the same checkpoint
    with the same settings, else rendered and saved there (one file per run). Returns
    (cloud, reused)."""
    from safetensors.torch import load_file, save_file

    path = run.run_dir / CLOUD_FILE
    meta = {"format": CLOUD_FORMAT, "checkpoint": run.checkpoint.name, "step": str(run.step),
            "settings": json.dumps(settings.__dict__, sort_keys=True), "fingerprint": run.model.teacher_fingerprint_hex}
    if reuse and path.is_file():
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                stored = handle.metadata() or {}
            if {k: stored.get(k) for k in meta} == meta:
                t = load_file(str(path))
                return FieldCloud(t["points"], t["colors"], t["features"], t["scales"], float(stored["voxel"]),
                                  t["view_index"], t["view_points"], t["view_sizes"]), True
        except Exception:  # noqa: BLE001 - a damaged cache file is rebuilt
            pass
    cloud = render_cloud(run.model, run.pipeline.datamanager.train_dataset.cameras, settings, progress)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # atomic: a concurrent query reads whole files
    try:
        save_file({"points": cloud.points.contiguous(), "colors": cloud.colors.contiguous(),
                   "features": cloud.features.contiguous(), "scales": cloud.scales.contiguous(),
                   "view_index": cloud.view_index.contiguous(), "view_points": cloud.view_points.contiguous(),
                   "view_sizes": cloud.view_sizes.contiguous()},
                  str(partial), metadata={**meta, "voxel": repr(cloud.voxel)})
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return cloud, False


# ------------------------------------------------------------------------------------- queries


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
           top_fraction: float = 0.005, min_points: int = 8) -> Region:
    """The best-matching region: the densest-relevance cluster among the most relevant points."""
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


LOCATE_METHODS = ("relevancy", "grounding")


def answer(run: LoadedRun, query: Query, *, cloud: FieldCloud, out: str | Path | None = None,
           top_fraction: float = 0.005, method: str = "grounding", votes: Any = None) -> dict[str, Any]:
    """Locate ``query`` in the run's scene; write the scored cloud to ``out`` (PLY) if given.
    ``method``: "grounding" (FIND's grounding in the cloud's rendered views, lifted into the cloud
    and voted, :mod:`find_ros.fields.grounded`; ``votes`` its VoteSettings), or "relevancy" of the
    field's embeddings to the query's alone. benchmarks/field_accuracy.py measures both."""
    if method not in LOCATE_METHODS:
        raise ValueError(f"unknown locate method {method!r}; expected one of {', '.join(LOCATE_METHODS)}")
    embedding = embed_query(run.model, query)
    rel, best = score_cloud(run.model, cloud, embedding)
    points = cloud.points.numpy().astype(np.float64)
    scales = cloud.scales.numpy()[best.numpy()]
    extra: dict[str, Any] = {}
    if method == "grounding":
        from find_ros.fields.grounded import VoteSettings, ground_views, training_images, vote

        grounded = ground_views(run.model.embedder().model, training_images(run, cloud), query)
        score, kept = vote(cloud, grounded, votes or VoteSettings())
        if not score.any():
            raise ValueError("FIND grounded the query in none of the views (every mask empty)")
        views = run.pipeline.datamanager.train_dataset.image_filenames
        extra["grounded_views"] = [{"image": Path(views[int(cloud.view_index[g.view])]).name,
                                    "match": round(g.match, 4), "mask_pixels": int(g.mask.sum())} for g in kept]
    else:
        score = rel.numpy().astype(np.float64)
    region = locate(points, score, scales, cloud.voxel, top_fraction=top_fraction)
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
