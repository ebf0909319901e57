"""The find-field datamanager: nerfstudio's VanillaDataManager (in-process, no worker processes to
spawn per step) whose training batches also carry each ray's FIND teacher embedding (at a randomly
drawn crop scale, with the crops teacher), and each ray the angle its teacher cell spans (the
field's scale input).

When the dataset lists depth images (``depth_file_path`` in transforms.json: RGB-D cameras, the
synthetic world) they are loaded too (nerfstudio's DepthDataset) and the model supervises its
geometry with them. Without depth files the plain InputDataset is used: DepthDataset would
otherwise estimate depth with a monocular network downloaded at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple, Type

import torch

from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManager, VanillaDataManagerConfig
from nerfstudio.data.dataparsers.base_dataparser import DataparserOutputs
from nerfstudio.data.datasets.base_dataset import InputDataset
from nerfstudio.data.datasets.depth_dataset import DepthDataset

from find_ros.fields.model import ANGLE_KEY, TARGET_KEY
from find_ros.fields.targets import TeacherTargets


@dataclass
class FindFieldDataManagerConfig(VanillaDataManagerConfig):
    _target: Type = field(default_factory=lambda: FindFieldDataManager)
    load_depth: bool = True
    """Load the dataset's depth images when it lists them (for depth supervision)."""


class FindFieldDataManager(VanillaDataManager):
    config: FindFieldDataManagerConfig
    teacher: Optional[TeacherTargets] = None

    def _dataset(self, outputs: DataparserOutputs) -> InputDataset:
        has_depth = (outputs.metadata or {}).get("depth_filenames") is not None
        kind = DepthDataset if self.config.load_depth and has_depth else InputDataset
        return kind(dataparser_outputs=outputs, scale_factor=self.config.camera_res_scale_factor)

    def create_train_dataset(self) -> InputDataset:
        return self._dataset(self.train_dataparser_outputs)

    def create_eval_dataset(self) -> InputDataset:
        return self._dataset(self.dataparser.get_dataparser_outputs(split=self.test_split))

    def attach_teacher(self, targets: TeacherTargets) -> None:
        if targets.crop_heights.shape[0] != len(self.train_dataset):
            raise ValueError(f"teacher covers {targets.crop_heights.shape[0]} images; "
                             f"the training set has {len(self.train_dataset)}")
        self.teacher = targets.to(self.device)

    def next_train(self, step: int) -> Tuple[RayBundle, Dict]:
        ray_bundle, batch = super().next_train(step)
        if self.teacher is None:
            raise RuntimeError("find-field datamanager has no teacher: the find-field pipeline attaches it")
        indices = batch["indices"].to(self.device).long()
        image, y, x = indices[:, 0], indices[:, 1], indices[:, 2]
        scale_index = torch.randint(self.teacher.num_scales, (indices.shape[0],), device=self.device)
        batch[TARGET_KEY] = self.teacher.lookup(image, y, x, scale_index)
        fy = self.train_dataset.cameras.fy.to(self.device)[image].reshape(-1)
        angle = self.teacher.crop_heights[image, scale_index] / fy
        if ray_bundle.metadata is None:
            ray_bundle.metadata = {}
        ray_bundle.metadata[ANGLE_KEY] = angle.unsqueeze(-1)
        return ray_bundle, batch
