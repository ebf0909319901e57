"""The find-field pipeline: nerfstudio's VanillaPipeline that, when set up for training, distils
the training images with FIND once (or reads the cached result) and hands the targets to the
datamanager and the FIND model's fingerprint to the model, before the first step."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Optional, Type

from nerfstudio.pipelines.base_pipeline import VanillaPipeline, VanillaPipelineConfig
from nerfstudio.utils.rich_utils import CONSOLE

from find_ros.fields.cache import TeacherCache, TeacherSettings, default_cache_dir
from find_ros.fields.datamanager import FindFieldDataManager
from find_ros.fields.model import FindFieldModel
from find_ros.fields.targets import TeacherTargets, build_targets

if TYPE_CHECKING:
    from torch.amp import GradScaler

UNTRAINED_WARNING = ("WARNING: the FIND model is UNTRAINED (random interface weights): the field learns "
                     "meaningless embeddings; this checks the plumbing only")


@dataclass
class FindFieldPipelineConfig(VanillaPipelineConfig):
    _target: Type = field(default_factory=lambda: FindFieldPipeline)


def distil(pipeline: VanillaPipeline, progress: bool = True) -> TeacherTargets:
    """Teacher targets of the pipeline's training images (cached on disk)."""
    model, datamanager = pipeline.model, pipeline.datamanager
    assert isinstance(model, FindFieldModel) and isinstance(datamanager, FindFieldDataManager)
    cfg = model.config
    settings = TeacherSettings(cfg.teacher, tuple(float(s) for s in cfg.crop_scales), float(cfg.crop_overlap))
    cache = TeacherCache(cfg.teacher_cache or default_cache_dir(), int(cfg.teacher_cache_mb) << 20)
    dataset = datamanager.train_dataset
    targets = build_targets(len(dataset), dataset.get_numpy_image, model.find_model_dir, settings, cache,
                            device=cfg.teacher_device, batch_size=cfg.teacher_batch, progress=progress)
    CONSOLE.print(f"FIND teacher: {len(dataset)} images, {targets.reused} from cache, {targets.computed} computed "
                  f"(model {model.find_model_dir}, cache {cache.root})")
    return targets


class FindFieldPipeline(VanillaPipeline):
    def __init__(self, config: FindFieldPipelineConfig, device: str,
                 test_mode: Literal["test", "val", "inference"] = "val", world_size: int = 1, local_rank: int = 0,
                 grad_scaler: Optional["GradScaler"] = None) -> None:
        super().__init__(config, device, test_mode, world_size, local_rank, grad_scaler)
        if test_mode != "val":  # loading a trained field (ns-viewer, queries): no teacher needed
            return
        from find_ros.model import FindConfig

        if not FindConfig.load(self.model.find_model_dir / "config.json").trained:
            CONSOLE.print(f"[bold yellow]{UNTRAINED_WARNING}")
            print(f"find-field: {UNTRAINED_WARNING}", file=sys.stderr)
        targets = distil(self)
        if targets.dim != self.model.feature_field.mlp.out_dim:
            raise ValueError(f"teacher embeddings have {targets.dim} dimensions; the feature head predicts "
                             f"{self.model.feature_field.mlp.out_dim}")
        self.datamanager.attach_teacher(targets)
        self.model.set_teacher_fingerprint(targets.fingerprint)
