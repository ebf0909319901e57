"""FindConfig: everything needed to rebuild a FIND model, stored as config.json next to its weights."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from find_ros.model.presence import PresenceSettings
from find_ros.model.decoder_style import DECODER_STYLES, DecoderSettings, decoder_settings
from find_ros.model.inputs import RESIZE_RULES
from find_ros.model.results import SegmentationSettings

_READ_OUT = SegmentationSettings()
CONFIG_FORMAT = "find_ros.model/2"
# Version 1 configs (saved before the neck choice and the released-model settings) read unchanged:
# every field added since has a default that is version 1's behaviour.
READABLE_FORMATS = ("find_ros.model/1", CONFIG_FORMAT)
NECKS = ("find_ros", "transformer_fpn")


@dataclass
class FindConfig:
    """Sizes of the interface and the names of the two frozen encoders.

    ``vision_model`` / ``language_model`` are what ``from_pretrained`` of transformers takes: a
    directory (absolute, or relative to the model directory), a packaged alias such as
    ``all-MiniLM-L6-v2``, or a hub name already in the local cache (nothing is downloaded).
    The defaults of the sizes are FIND-T's (the authors' released configuration, UX-Decoder/FIND): 512 hidden, 8 heads, FFN 2048, 9 layers,
    100 object queries + 1 image-level query, 3 feature levels, 640 px input.
    """

    vision_model: str
    language_model: str
    # Hidden state of the language model used for tokens and sentences. None = the family's default:
    # -12 for causal LMs (the paper's LLaMA layer), -1 (last) for encoders such as BERT or CLIP text.
    language_layer: int | None = None
    hidden_dim: int = 512
    num_heads: int = 8
    ffn_dim: int = 2048
    num_layers: int = 9
    num_object_queries: int = 100
    num_global_queries: int = 1
    num_levels: int = 3
    mask_dim: int = 512
    input_size: int = 640  # long side of the network input; images are resized to it, then padded
    # How input_size applies: "long_side", or "shortest_edge" with the long side at most
    # max_input_size (0: no maximum), the authors' rule (find_ros.model.inputs.resized_size).
    resize_rule: str = "long_side"
    max_input_size: int = 0
    crop_size: int = 224  # long side used to encode a visual entity given as a crop
    size_divisibility: int = 32
    max_text_tokens: int = 77
    max_class_tokens: int = 150
    class_template: str = "Describe the concept of {c}."
    # Word standing in for a visual entity while the language model reads the sentence; its tokens
    # are then replaced by the entity's visual embedding (one token at that place).
    placeholder_word: str = "something"
    dropout: float = 0.0
    # Read-out of a visual entity (a crop or a region) in interleave grounding: its proposal is
    # picked by pixel-reference similarity (the paper's, and what training supervises) blended with
    # this weight of semantic similarity. The two err on different proposals, so a blend picks the
    # right object more often (measured in MODEL_CARD.md); 0 is the paper's read-out.
    visual_match_blend: float = 0.0
    # The neck from backbone maps to levels and pixel embeddings: "find_ros" (our trained FPN,
    # find_ros.model.neck) or "transformer_fpn" (X-Decoder's pixel decoder, the released FIND
    # models'), whose transformer encoder has ``neck_layers`` layers.
    neck: str = "find_ros"
    neck_layers: int = 6
    # Memory slots of the authors' multi-round interactive segmentation; > 0 also keeps their
    # point-sampling weights (find_ros.model.point_sampling). Our own models have neither.
    spatial_memories: int = 0
    # Generic segmentation's read-out for this model (the authors' names; a converted model has
    # its YAML's values): SegmentationSettings' object_threshold, overlap_threshold and top_k.
    object_mask_threshold: float = _READ_OUT.object_threshold
    overlap_threshold: float = _READ_OUT.overlap_threshold
    detections_per_image: int = _READ_OUT.top_k
    # Presence decision of match read-outs, fitted by `python -m training.calibrate_presence`
    # (PresenceSettings.to_dict: per entity kind the logistic weights and bias, the threshold, how it
    # was calibrated). None: the uncalibrated fallback of find_ros.model.presence.
    presence: dict[str, Any] | None = None
    # The numerics of interface, heads and read-outs (find_ros.model.decoder_style): "find_ros"
    # (our own models) or "official" (a converted release of the authors' FIND).
    decoder_style: str = "find_ros"
    # Where converted weights came from (find-ros import-find): file name, SHA-256, variant.
    source: dict[str, Any] | None = None
    # False until a training run saved these weights: surfaces print UNTRAINED when it is False.
    trained: bool = False

    def __post_init__(self) -> None:
        problems = []
        if self.hidden_dim % self.num_heads:
            problems.append(f"hidden_dim {self.hidden_dim} is not divisible by num_heads {self.num_heads}")
        for name in ("hidden_dim", "num_heads", "ffn_dim", "num_layers", "num_object_queries",
                     "num_global_queries", "num_levels", "mask_dim", "input_size", "crop_size",
                     "max_text_tokens", "max_class_tokens"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be >= 1")
        if self.resize_rule not in RESIZE_RULES or int(self.max_input_size) < 0:
            problems.append(f"resize_rule must be one of {', '.join(RESIZE_RULES)} and max_input_size >= 0")
        if self.decoder_style not in DECODER_STYLES:
            problems.append(f"decoder_style {self.decoder_style!r} is not one of {', '.join(DECODER_STYLES)}")
        if self.neck not in NECKS:
            problems.append(f"neck {self.neck!r} is not one of {', '.join(NECKS)}")
        if int(self.neck_layers) < 0 or int(self.spatial_memories) < 0:
            problems.append("neck_layers and spatial_memories must be >= 0")
        try:
            self.segmentation_settings()
        except ValueError as error:
            problems.append(f"segmentation read-out: {error}")
        try:
            PresenceSettings.from_dict(self.presence)
        except ValueError as error:
            problems.append(str(error))
        if not 0.0 <= self.visual_match_blend <= 1.0:
            problems.append("visual_match_blend must be in [0, 1]")
        if self.num_levels > 3:
            problems.append("num_levels must be <= 3 (strides 32, 16, 8)")
        if self.size_divisibility % 32:
            problems.append("size_divisibility must be a multiple of 32 (the coarsest stride)")
        if "{c}" not in self.class_template:
            problems.append("class_template must contain {c}")
        if problems:
            raise ValueError("invalid FindConfig: " + "; ".join(problems))

    def segmentation_settings(self) -> SegmentationSettings:
        return SegmentationSettings(object_threshold=float(self.object_mask_threshold),
                                    overlap_threshold=float(self.overlap_threshold), top_k=int(self.detections_per_image))

    @property
    def decoder(self) -> DecoderSettings:
        return decoder_settings(self.decoder_style)

    @property
    def num_queries(self) -> int:
        return self.num_object_queries + self.num_global_queries

    def to_dict(self) -> dict[str, Any]:
        return {"format": CONFIG_FORMAT, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FindConfig:
        data = dict(data)
        fmt = data.pop("format", CONFIG_FORMAT)
        if fmt not in READABLE_FORMATS:
            raise ValueError(f"unsupported model config format {fmt!r}; this code reads {', '.join(READABLE_FORMATS)}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(unknown)}")
        missing = [n for n in ("vision_model", "language_model") if n not in data]
        if missing:
            raise ValueError(f"model config lacks {', '.join(missing)}")
        return cls(**data)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> FindConfig:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"model config not found: {path}")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from error
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object")
        return cls.from_dict(data)


def tiny_config(vision_model: str, language_model: str, **overrides: Any) -> FindConfig:
    """A config small enough for unit tests on a CPU (hidden 32, 3 layers, 8+1 queries, 64 px)."""
    sizes: dict[str, Any] = dict(
        hidden_dim=32, num_heads=2, ffn_dim=64, num_layers=3, num_object_queries=8,
        num_global_queries=1, mask_dim=32, input_size=64, crop_size=32, max_text_tokens=32,
        max_class_tokens=32,
    )
    sizes.update(overrides)
    return FindConfig(vision_model=vision_model, language_model=language_model, **sizes)
