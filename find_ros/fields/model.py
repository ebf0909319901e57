"""The find-field model: nerfacto's radiance field plus a FIND feature head.

The feature of a ray is the feature head evaluated at the ray's **surface point** (origin +
direction x median depth, depth detached) rather than volume-rendered over the ray's 48 samples as
LERF and F3RM do: one hash lookup per ray instead of one per sample (24-48 on this method's
settings), and the points a 3D query scores — back-projected from rendered depth — are exactly the
points that were supervised. The embedding never shapes the geometry (positions are detached).

Scale (crops teacher only; the dense teacher has one scale): a teacher crop spans an angle (crop
height / focal length); at the surface point that is ``angle x depth`` world units, the head's
scale input (LERF's world-space scale). The model keeps a running estimate of the scales it
trained on, and queries evaluate ``query_scales`` scales spread over that range, each point taking
its most relevant one.

Geometry: the feature lives where the geometry says, so with RGB-D data (depth images listed in
the dataset) geometry is also supervised by depth (nerfstudio's DS-NeRF loss, as depth-nerfacto
does): on a CPU budget of a few hundred steps, photometric loss alone often explains an indoor
room by far-away "background" density.

Offline: nerfacto builds torchmetrics' LPIPS, whose constructor downloads AlexNet weights; this
model builds nerfacto with LPIPS left out (it reports PSNR and SSIM only).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Literal, Optional, Tuple, Type

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter

from nerfstudio.cameras.rays import RayBundle
from nerfstudio.model_components.losses import DepthLossType, depth_loss
from nerfstudio.models.nerfacto import NerfactoModel, NerfactoModelConfig

from find_ros.fields.feature_field import FindFeatureField
from find_ros.fields.relevancy import CANONICAL_NEGATIVES, composite, over_scales

ANGLE_KEY = "find_angle"  # ray metadata: angle (radians) spanned by the ray's teacher crop
TARGET_KEY = "find_target"  # batch: the ray's teacher embedding
SCALE_MOMENTUM = 0.05


class _NoLPIPS:
    """Stands in for torchmetrics' LPIPS while nerfacto builds its modules: LPIPS downloads AlexNet
    weights in its constructor, which fails offline (and its weights are not ours to ship)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __call__(self, *args: object, **kwargs: object) -> Tensor:
        return torch.tensor(float("nan"))


@contextlib.contextmanager
def _without_lpips() -> Iterator[None]:
    import torchmetrics.image.lpip as lpip_module

    original = lpip_module.LearnedPerceptualImagePatchSimilarity
    lpip_module.LearnedPerceptualImagePatchSimilarity = _NoLPIPS  # nerfacto imports it inside populate_modules
    try:
        yield
    finally:
        lpip_module.LearnedPerceptualImagePatchSimilarity = original


@dataclass
class FindFieldModelConfig(NerfactoModelConfig):
    """nerfacto plus the FIND feature head. The teacher options are read by the pipeline, which
    distils the training images once before training starts."""

    _target: Type = field(default_factory=lambda: FindFieldModel)
    implementation: Literal["tcnn", "torch"] = "torch"
    """Hash grids in plain torch: no tinycudann needed, CPU and CUDA alike."""
    find_model: Optional[Path] = None
    """FIND model directory (config.json + weights). None: $FIND_ROS_MODEL or the packaged default
    model, else an UNTRAINED placeholder (plumbing only)."""
    teacher: Literal["crops", "dense"] = "crops"
    """What is distilled (find_ros.fields.teacher): FIND's image embeddings of a multi-scale crop
    pyramid (LERF-style, scale-conditioned), or FIND's dense per-pixel semantic embeddings
    (proposal semantics x masks)."""
    teacher_device: str = "auto"
    """Where FIND runs while distilling (auto: CUDA when present)."""
    teacher_batch: int = 16
    """Crops encoded per FIND call."""
    teacher_cache: Optional[Path] = None
    """Teacher cache directory. None: $FIND_ROS_CACHE/field_teacher (~/.cache/find_ros/field_teacher)."""
    teacher_cache_mb: int = 2048
    """Cache budget; least recently used entries beyond it are deleted."""
    crop_scales: Tuple[float, ...] = (0.2, 0.35, 0.6)
    """Crops teacher: crop sizes as fractions of the image's height and width."""
    crop_overlap: float = 0.5
    """Crops teacher: overlap of neighbouring crops of one scale (0.5: half a crop)."""
    feature_num_levels: int = 12
    feature_max_res: int = 512
    feature_log2_hashmap_size: int = 17
    feature_features_per_level: int = 4
    feature_hidden_dim: int = 64
    feature_num_layers: int = 2
    scale_conditioned: bool = True
    """Crops teacher: condition the feature head on the crop's world-space size (LERF). The dense
    teacher has one scale, so its head never is."""
    feature_loss_mult: float = 1.0
    """Weight of the cosine loss between rendered and teacher embeddings."""
    depth_loss_mult: float = 1e-2
    """Weight of depth supervision (DS-NeRF loss) when the dataset has depth images; 0 turns it off."""
    depth_sigma: float = 0.01
    """Depth uncertainty of that loss, in the dataparser's units."""
    negatives: Tuple[str, ...] = CANONICAL_NEGATIVES
    """Canonical negative phrases for relevancy."""
    relevancy_temperature: float = 10.0
    query_scales: int = 5
    """Scales evaluated per query, spread over the trained range."""


class FindFieldModel(NerfactoModel):
    config: FindFieldModelConfig

    def populate_modules(self) -> None:
        with _without_lpips():
            super().populate_modules()
        from find_ros.model import FindConfig, resolve_model_dir

        self.find_model_dir = resolve_model_dir(self.config.find_model)
        dim = FindConfig.load(self.find_model_dir / "config.json").hidden_dim
        self.feature_field = FindFeatureField(
            self.scene_box.aabb, dim, num_levels=self.config.feature_num_levels, max_res=self.config.feature_max_res,
            log2_hashmap_size=self.config.feature_log2_hashmap_size,
            features_per_level=self.config.feature_features_per_level, hidden_dim=self.config.feature_hidden_dim,
            num_layers=self.config.feature_num_layers, scale_conditioned=self.scale_conditioned,
            spatial_distortion=self.field.spatial_distortion)
        # Saved with the checkpoint: which FIND model the field was distilled from (sha256 bytes),
        # and the running 5th/95th percentiles of log world scale seen in training.
        self.register_buffer("teacher_fingerprint", torch.zeros(32, dtype=torch.uint8))
        self.register_buffer("log_scale_range", torch.zeros(2))
        self.register_buffer("scale_range_set", torch.zeros((), dtype=torch.bool))
        self._embedder = None
        self._query: Optional[Tensor] = None
        self._negatives: Optional[Tensor] = None
        self.query_label = ""
        self._add_viewer_controls()

    @property
    def scale_conditioned(self) -> bool:
        return self.config.scale_conditioned and self.config.teacher == "crops"

    # ------------------------------------------------------------------------------ identity

    def set_teacher_fingerprint(self, hex_digest: str) -> None:
        self.teacher_fingerprint.copy_(torch.tensor(list(bytes.fromhex(hex_digest)), dtype=torch.uint8))

    @property
    def teacher_fingerprint_hex(self) -> str:
        return bytes(self.teacher_fingerprint.cpu().tolist()).hex()

    # ------------------------------------------------------------------------------ training

    def get_param_groups(self) -> Dict[str, List[Parameter]]:
        groups = super().get_param_groups()
        groups["feature_field"] = list(self.feature_field.parameters())
        return groups

    def surface_points(self, ray_bundle: RayBundle, depth: Tensor) -> Tensor:
        """Where each ray's feature lives: origin + direction x median depth (no gradient)."""
        return (ray_bundle.origins + ray_bundle.directions * depth).detach()

    @torch.no_grad()
    def _track_scales(self, scale: Tensor) -> None:
        logs = scale.detach().clamp_min(1e-4).log().flatten().float()
        q = torch.quantile(logs, torch.tensor([0.05, 0.95], device=logs.device))
        if bool(self.scale_range_set):
            self.log_scale_range.lerp_(q, SCALE_MOMENTUM)
        else:
            self.log_scale_range.copy_(q)
            self.scale_range_set.fill_(True)

    def query_scale_values(self) -> Tensor:
        """World scales a query evaluates: geometric steps over the trained range."""
        if not bool(self.scale_range_set) or not self.scale_conditioned:
            return torch.ones(1, device=self.log_scale_range.device)
        lo, hi = self.log_scale_range.tolist()
        return torch.linspace(lo, hi, max(1, self.config.query_scales), device=self.log_scale_range.device).exp()

    def get_outputs(self, ray_bundle: RayBundle) -> Dict[str, Tensor | List]:
        outputs = super().get_outputs(ray_bundle)
        if ray_bundle.metadata and "directions_norm" in ray_bundle.metadata:
            outputs["directions_norm"] = ray_bundle.metadata["directions_norm"]
        points = self.surface_points(ray_bundle, outputs["depth"])
        if self.training:
            metadata = ray_bundle.metadata or {}
            if ANGLE_KEY not in metadata:
                raise RuntimeError("find-field training rays carry no crop angle: use the find-field datamanager")
            scale = metadata[ANGLE_KEY] * outputs["depth"].detach()
            outputs["find_embedding"] = self.feature_field(points, scale)
            self._track_scales(scale)
        elif self._query is not None:
            features = self.feature_field.at_scales(points, self.query_scale_values())
            rel, _ = over_scales(features, self._query, self._negatives, self.config.relevancy_temperature)
            outputs["relevancy"] = rel.unsqueeze(-1)
            outputs["composited"] = composite(outputs["rgb"], rel)
        return outputs

    def get_metrics_dict(self, outputs: Dict, batch: Dict) -> Dict[str, Tensor]:
        metrics = super().get_metrics_dict(outputs, batch)
        if "find_embedding" in outputs and TARGET_KEY in batch:
            metrics["find_cosine"] = F.cosine_similarity(
                outputs["find_embedding"], batch[TARGET_KEY].to(self.device), dim=-1).mean()
        return metrics

    def get_loss_dict(self, outputs: Dict, batch: Dict, metrics_dict: Optional[Dict] = None) -> Dict[str, Tensor]:
        losses = super().get_loss_dict(outputs, batch, metrics_dict)
        if "find_embedding" in outputs and TARGET_KEY in batch:
            cosine = F.cosine_similarity(outputs["find_embedding"], batch[TARGET_KEY].to(self.device), dim=-1)
            losses["find_loss"] = self.config.feature_loss_mult * (1.0 - cosine).mean()
        if self.training and self.config.depth_loss_mult > 0 and "depth_image" in batch:
            losses["depth_loss"] = self.config.depth_loss_mult * self._depth_loss(outputs, batch["depth_image"])
        return losses

    def _depth_loss(self, outputs: Dict, depth: Tensor) -> Tensor:
        """DS-NeRF loss on every sampler level, as nerfstudio's depth-nerfacto computes it; rays
        without a depth reading (0) do not count."""
        depth = depth.to(self.device)
        sigma = torch.tensor([self.config.depth_sigma], device=self.device)
        total = torch.zeros((), device=self.device)
        for weights, samples in zip(outputs["weights_list"], outputs["ray_samples_list"]):
            total = total + depth_loss(weights=weights, ray_samples=samples, termination_depth=depth,
                                       predicted_depth=outputs["expected_depth"], sigma=sigma,
                                       directions_norm=outputs["directions_norm"], is_euclidean=False,
                                       depth_loss_type=DepthLossType.DS_NERF)
        return total / len(outputs["weights_list"])

    def get_image_metrics_and_images(self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]
                                     ) -> Tuple[Dict[str, float], Dict[str, Tensor]]:
        metrics, images = super().get_image_metrics_and_images(outputs, batch)
        metrics.pop("lpips", None)  # not computed offline, see _NoLPIPS
        for key in ("relevancy", "composited"):
            if key in outputs:
                images[key] = outputs[key]
        return metrics, images

    # ------------------------------------------------------------------------------- queries

    def embedder(self):  # noqa: ANN201 - FieldEmbedder, imported lazily (loads FIND)
        """The FIND model the field was distilled from, loaded on first use (queries, viewer)."""
        if self._embedder is None:
            from find_ros.fields.teacher import FieldEmbedder

            self._embedder = FieldEmbedder.load(self.find_model_dir, device=self.config.teacher_device,
                                                batch_size=self.config.teacher_batch, kind=self.config.teacher)
            if self._embedder.dim != self.feature_field.mlp.out_dim:
                raise ValueError(f"FIND model {self.find_model_dir} embeds in {self._embedder.dim} dimensions; "
                                 f"this field predicts {self.feature_field.mlp.out_dim}")
        return self._embedder

    def negative_embeddings(self) -> Tensor:
        if self._negatives is None:
            names = list(self.config.negatives)
            dim = self.feature_field.mlp.out_dim
            self._negatives = (self.embedder().texts(names) if names else torch.zeros(0, dim)).to(self.device)
        return self._negatives

    def set_query(self, embedding: Optional[Tensor], label: str = "") -> None:
        """The query whose relevancy evaluation renders show (None clears it)."""
        if embedding is None:
            self._query, self.query_label = None, ""
            return
        self.negative_embeddings()
        self._query = embedding.reshape(-1).to(self.device)
        self.query_label = label

    def _add_viewer_controls(self) -> None:
        try:
            from nerfstudio.viewer.viewer_elements import ViewerText
        except ImportError:  # viewer extras missing: training and queries work without them
            return

        def on_text(element: ViewerText) -> None:
            text = element.value.strip()
            try:
                self.set_query(self.embedder().texts([text]) if text else None, text)
            except Exception as error:  # noqa: BLE001 - a viewer callback must not kill the viewer
                print(f"find-field: query {text!r} failed: {error}", file=sys.stderr)

        self.viewer_query = ViewerText("FIND query", "", cb_hook=on_text,
                                       hint="text query; renders 'relevancy' and 'composited'")
