"""X-Decoder's FocalNet backbones, the vision family ``xdecoder_focalnet`` of the released FIND models.

Two block variants share the focal modulation, the MLP and the downsampling (facts from
``find-official/README.md`` §4, the authors' FocalNet as run under FIND):

* ``focal_dw`` (FIND-T): a 3×3 depthwise conv with a residual before the modulation and before the
  MLP, and the norms placed *after* each residual add; the stem convolution pads by 3.
* ``focal`` (FIND-L): no depthwise convs; the norms normalise each *branch* before it is scaled and
  added; the stem convolution pads by 2.

Each stage's last block output, before the downsampling, goes through its own LayerNorm
``norm{S}`` and is the feature map ``res{S+2}`` (strides 4, 8, 16, 32). Parameter names follow the
released state dict (without its ``backbone.`` prefix), so the checkpoint maps onto this module
key for key.

A converted backbone lives in a ``vision/`` directory: ``config.json`` (``model_type``
``xdecoder_focalnet`` and the sizes of :class:`FocalNetSpec`) and ``model.safetensors``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from find_ros.model.encoders import _FrozenModule, freeze

MODEL_TYPE = "xdecoder_focalnet"
VARIANTS = ("focal_dw", "focal")
# The authors normalise 0..255 pixels by these; divided by 255 they are the ImageNet statistics.
PIXEL_MEAN = (123.675 / 255, 116.28 / 255, 103.53 / 255)
PIXEL_STD = (58.395 / 255, 57.12 / 255, 57.375 / 255)


@dataclass(frozen=True)
class FocalNetSpec:
    """Sizes of one X-Decoder FocalNet. The defaults are FIND-T's (the released focalt yaml)."""

    variant: str = "focal_dw"
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    focal_levels: tuple[int, ...] = (3, 3, 3, 3)
    focal_windows: tuple[int, ...] = (3, 3, 3, 3)
    mlp_ratio: float = 4.0
    patch_size: int = 4

    def __post_init__(self) -> None:
        problems = []
        if self.variant not in VARIANTS:
            problems.append(f"variant {self.variant!r} is not one of {', '.join(VARIANTS)}")
        stages = len(self.depths)
        if stages < 1 or len(self.focal_levels) != stages or len(self.focal_windows) != stages:
            problems.append("depths, focal_levels and focal_windows need one entry per stage")
        if self.embed_dim < 1 or any(int(d) < 1 for d in self.depths) or any(int(lv) < 1 for lv in self.focal_levels):
            problems.append("embed_dim, depths and focal_levels must be >= 1")
        if any(int(w) < 1 or int(w) % 2 == 0 for w in self.focal_windows):
            problems.append("focal_windows must be odd and >= 1")
        if problems:
            raise ValueError("invalid FocalNetSpec: " + "; ".join(problems))
        for name in ("depths", "focal_levels", "focal_windows"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(self.embed_dim * 2**s for s in range(len(self.depths)))

    @property
    def strides(self) -> tuple[int, ...]:
        return tuple(self.patch_size * 2**s for s in range(len(self.depths)))

    def to_dict(self) -> dict[str, Any]:
        return {"model_type": MODEL_TYPE, **{k: list(v) if isinstance(v, tuple) else v
                                             for k, v in dataclasses.asdict(self).items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FocalNetSpec:
        data = dict(data)
        if data.pop("model_type", MODEL_TYPE) != MODEL_TYPE:
            raise ValueError(f"not a {MODEL_TYPE} config")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown {MODEL_TYPE} config keys: {', '.join(unknown)}")
        return cls(**data)


def _channels_last(conv: nn.Module, x: Tensor) -> Tensor:
    """Apply a channels-first conv to a channels-last map (B, H, W, C)."""
    return conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class FocalModulation(nn.Module):
    """Focal modulation over a channels-last map: a query, a context aggregated over ``levels``
    growing depthwise kernels plus a global level, gated per level and averaged, then
    ``proj(q * h(context))``."""

    def __init__(self, dim: int, levels: int, window: int) -> None:
        super().__init__()
        self.dim = dim
        self.levels = levels
        self.f = nn.Linear(dim, 2 * dim + levels + 1)
        self.h = nn.Conv2d(dim, dim, 1)
        self.proj = nn.Linear(dim, dim)
        self.focal_layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(dim, dim, window + 2 * lv, padding=(window + 2 * lv) // 2, groups=dim, bias=False),
                          nn.GELU())
            for lv in range(levels)
        )

    def forward(self, x: Tensor) -> Tensor:
        q, ctx, gates = self.f(x).permute(0, 3, 1, 2).split([self.dim, self.dim, self.levels + 1], dim=1)
        context = torch.zeros_like(ctx)
        for level, layer in enumerate(self.focal_layers):
            ctx = layer(ctx)
            context = context + ctx * gates[:, level : level + 1]
        context = context + F.gelu(ctx.mean((2, 3), keepdim=True)) * gates[:, self.levels :]
        context = context / (self.levels + 1)  # the "normalized modulator"
        return self.proj((q * self.h(context)).permute(0, 2, 3, 1))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class FocalNetBlock(nn.Module):
    def __init__(self, dim: int, spec: FocalNetSpec, levels: int, window: int) -> None:
        super().__init__()
        self.depthwise = spec.variant == "focal_dw"
        if self.depthwise:
            self.dw1 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
            self.dw2 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.LayerNorm(dim)
        self.modulation = FocalModulation(dim, levels, window)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * spec.mlp_ratio))
        self.gamma_1 = nn.Parameter(torch.ones(dim))
        self.gamma_2 = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        """``x`` channels-last (B, H, W, C)."""
        if self.depthwise:
            x = x + _channels_last(self.dw1, x)
            x = self.norm1(x + self.gamma_1 * self.modulation(x))
            x = x + _channels_last(self.dw2, x)
            return self.norm2(x + self.gamma_2 * self.mlp(x))
        x = x + self.gamma_1 * self.norm1(self.modulation(x))
        return x + self.gamma_2 * self.norm2(self.mlp(x))


class ConvEmbed(nn.Module):
    """Strided conv + LayerNorm: the stem (7×7, stride = patch size) and each downsampling (3×3, stride 2)."""

    def __init__(self, in_dim: int, out_dim: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__()
        self.stride = stride
        self.proj = nn.Conv2d(in_dim, out_dim, kernel, stride=stride, padding=padding)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: Tensor) -> Tensor:
        """Channels-first in, channels-last out. The input is first padded right/bottom to a multiple
        of the stride, as the authors' patch embedding does."""
        height, width = x.shape[-2:]
        x = F.pad(x, (0, -width % self.stride, 0, -height % self.stride))
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class FocalNetStage(nn.Module):
    def __init__(self, dim: int, depth: int, spec: FocalNetSpec, levels: int, window: int, downsample: bool) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(FocalNetBlock(dim, spec, levels, window) for _ in range(depth))
        self.downsample = ConvEmbed(dim, 2 * dim, 3, 2, 1) if downsample else None


class XDecoderFocalNet(nn.Module):
    """The backbone: normalised pixels (B, 3, H, W) → [res2, res3, res4, res5] channels-first."""

    def __init__(self, spec: FocalNetSpec) -> None:
        super().__init__()
        self.spec = spec
        stem_padding = 3 if spec.variant == "focal_dw" else 2
        self.patch_embed = ConvEmbed(3, spec.embed_dim, 7, spec.patch_size, stem_padding)
        last = len(spec.depths) - 1
        self.layers = nn.ModuleList(
            FocalNetStage(dim, depth, spec, levels, window, downsample=s < last)
            for s, (dim, depth, levels, window) in enumerate(zip(spec.channels, spec.depths, spec.focal_levels,
                                                                 spec.focal_windows))
        )
        for s, dim in enumerate(spec.channels):
            self.add_module(f"norm{s}", nn.LayerNorm(dim))

    def forward(self, pixels: Tensor) -> list[Tensor]:
        x = self.patch_embed(pixels)
        maps = []
        for s, stage in enumerate(self.layers):
            for block in stage.blocks:
                x = block(x)
            maps.append(getattr(self, f"norm{s}")(x).permute(0, 3, 1, 2).contiguous())
            if stage.downsample is not None:
                x = stage.downsample(x.permute(0, 3, 1, 2))
        return maps

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write the ``vision/`` layout :func:`load_backbone` reads."""
        return save_backbone(directory, self.spec, self.state_dict())


def save_backbone(directory: str | Path, spec: FocalNetSpec, state: dict[str, Tensor]) -> Path:
    """``config.json`` (the spec, ``model_type`` ``xdecoder_focalnet``) + ``model.safetensors``."""
    from find_ros.model.checkpoint import save_weights

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(spec.to_dict(), indent=2) + "\n")
    save_weights(state, directory / "model.safetensors")
    return directory


def is_backbone_dir(directory: str | Path) -> bool:
    """Whether ``directory`` holds a converted X-Decoder FocalNet (its config names our model type)."""
    config = Path(directory) / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("model_type") == MODEL_TYPE
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return False


def load_backbone(directory: str | Path) -> XDecoderFocalNet:
    """Read a ``vision/`` directory written by :meth:`XDecoderFocalNet.save_pretrained`; a weight
    file that does not fit its config is refused with the differing keys named."""
    from find_ros.model.checkpoint import check_state, load_weights

    directory = Path(directory)
    try:
        spec = FocalNetSpec.from_dict(json.loads((directory / "config.json").read_text()))
    except (OSError, json.JSONDecodeError, TypeError, ValueError) as error:
        raise ValueError(f"{directory / 'config.json'}: not a valid {MODEL_TYPE} config ({error})") from error
    state = load_weights(directory / "model.safetensors")
    with torch.device("meta"):
        expected = XDecoderFocalNet(spec).state_dict()
    check_state(expected, state, str(directory / "model.safetensors"))
    backbone = XDecoderFocalNet(spec)
    backbone.load_state_dict(state)
    return backbone



class XDecoderFocalNetEncoder(_FrozenModule):
    """A converted backbone as a frozen :class:`~find_ros.model.encoders.VisionEncoder`: four maps
    at strides 4..32, from pixels normalised by the ImageNet statistics (the authors')."""

    family = MODEL_TYPE
    pixel_mean = PIXEL_MEAN
    pixel_std = PIXEL_STD

    def __init__(self, model: XDecoderFocalNet) -> None:
        super().__init__()
        self.model = freeze(model)
        self.strides = model.spec.strides
        self.channels = model.spec.channels

    @torch.inference_mode()
    def forward(self, pixels: Tensor) -> list[Tensor]:
        return self.model(pixels)


def load_vision_encoder(directory: str | Path) -> XDecoderFocalNetEncoder:
    return XDecoderFocalNetEncoder(load_backbone(directory))
