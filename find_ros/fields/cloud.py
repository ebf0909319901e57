"""The point cloud a find-field query is answered in, rendered once per checkpoint.

Render the training cameras at a reduced size, back-project every ray with enough accumulation to
its surface point (origin + direction x median depth — the points the feature head was trained on),
average into voxels, and evaluate the feature head at every point for each query scale; each view's
per-pixel surface points are kept too, for lifting 2D masks (:mod:`find_ros.fields.grounded`). The
cloud is cached in the run directory.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import torch
from torch import Tensor

from find_ros.fields.loading import LoadedRun
from find_ros.fields.query import CloudSettings, FieldCloud

CLOUD_FORMAT = "find_ros.fields/cloud/2"
CLOUD_FILE = "find_field_cloud.safetensors"
FEATURE_CHUNK = 1 << 15


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
