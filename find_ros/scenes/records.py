"""What the exporters need to know about one image, kept after its pixels are written to disk."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from find_ros.scenes import vocabulary as V
from find_ros.scenes.annotate import ViewAnnotation
from find_ros.scenes.render import Frame


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE of a boolean mask, with ``counts`` as text (JSON-ready)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


@dataclass
class ImageRecord:
    image_id: int
    split: str
    file_name: str  # relative to the split's image folder
    width: int
    height: int
    scene_kind: str
    camera: dict[str, Any]  # intrinsics (OpenCV convention) and world_from_camera (OpenCV axes)
    annotation: ViewAnnotation
    rles: dict[int, dict[str, Any]] = field(default_factory=dict)  # element id -> RLE, things only

    @property
    def panoptic_file_name(self) -> str:
        return f"{self.image_id:012d}.png"

    def segment_id(self, element_id: int) -> int:
        return V.segment_id(self.image_id, element_id)

    @classmethod
    def from_frame(cls, image_id: int, split: str, file_name: str, scene_kind: str, frame: Frame,
                   annotation: ViewAnnotation) -> ImageRecord:
        camera = {**frame.intrinsics.to_dict(), "world_from_camera": np.round(frame.world_from_camera, 9).tolist()}
        rles = {s.element_id: encode_rle(frame.ids == s.element_id) for s in annotation.segments if s.isthing}
        return cls(image_id, split, file_name, frame.intrinsics.width, frame.intrinsics.height, scene_kind,
                   camera, annotation, rles)

    def image_entry(self) -> dict[str, Any]:
        return {"id": self.image_id, "file_name": self.file_name, "width": self.width, "height": self.height}
