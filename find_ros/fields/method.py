"""`ns-train find-field`: the method registered through the ``nerfstudio.method_configs`` entry
point (setup.py). nerfstudio imports this module for every ns-* command, so it only builds
configs: FIND and the training images are touched when a pipeline is set up.

Defaults follow the machine: with CUDA, nerfacto's sizes and mixed precision; without, a CPU run
(``device_type=cpu``, fp32, 1024 rays per batch, smaller hash grids, fewer samples per ray,
1500 steps) that trains without any flag. On a CPU shared with other work, ``OMP_NUM_THREADS=1``
is often several times faster than torch's default of one thread per core.
"""

from __future__ import annotations

import torch

from nerfstudio.cameras.camera_optimizers import CameraOptimizerConfig
from nerfstudio.configs.base_config import MachineConfig, ViewerConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.plugins.types import MethodSpecification

from find_ros.fields.datamanager import FindFieldDataManagerConfig
from find_ros.fields.model import FindFieldModelConfig
from find_ros.fields.pipeline import FindFieldPipelineConfig
from find_ros.fields.schedule import FloatExponentialDecaySchedulerConfig

METHOD_NAME = "find-field"
CUDA = torch.cuda.is_available()


def _adam(lr: float, final: float, steps: int) -> dict:
    return {"optimizer": AdamOptimizerConfig(lr=lr, eps=1e-15),
            "scheduler": FloatExponentialDecaySchedulerConfig(lr_final=final, max_steps=steps)}


def find_field_config() -> TrainerConfig:
    # CPU: smaller hash grids and fewer samples per ray (0.6 s per 1024-ray step on one core of
    # this machine instead of 1.7 s with nerfacto's 256+96+48), and smaller render chunks, which
    # run faster on a CPU than nerfacto's 32k-ray chunks.
    model_sizes = {} if CUDA else dict(log2_hashmap_size=17, num_levels=12, max_res=1024,
                                       num_proposal_samples_per_ray=(64, 32), num_nerf_samples_per_ray=24,
                                       eval_num_rays_per_chunk=1 << 10)
    return TrainerConfig(
        method_name=METHOD_NAME,
        steps_per_eval_batch=500,
        steps_per_save=2000 if CUDA else 500,
        max_num_iterations=30000 if CUDA else 1500,
        mixed_precision=CUDA,
        machine=MachineConfig(device_type="cuda" if CUDA else "cpu"),
        pipeline=FindFieldPipelineConfig(
            datamanager=FindFieldDataManagerConfig(
                dataparser=NerfstudioDataParserConfig(),
                train_num_rays_per_batch=4096 if CUDA else 1024,
                eval_num_rays_per_batch=4096 if CUDA else 1024,
            ),
            model=FindFieldModelConfig(
                average_init_density=0.01,
                camera_optimizer=CameraOptimizerConfig(mode="SO3xR3"),
                **model_sizes,
            ),
        ),
        optimizers={
            "proposal_networks": _adam(1e-2, 1e-4, 200000),
            "fields": _adam(1e-2, 1e-4, 200000),
            "feature_field": _adam(1e-2, 1e-4, 200000),
            "camera_opt": _adam(1e-3, 1e-4, 5000),
        },
        viewer=ViewerConfig(num_rays_per_chunk=1 << 15 if CUDA else 1 << 12),
        vis="viewer",
    )


find_field = MethodSpecification(
    config=find_field_config(),
    description="FIND feature field (find_ros): nerfacto + a distilled FIND embedding head, queried in 3D by "
                "text, image crops or interleaved instructions; CPU-ready, no tinycudann",
)
