"""Converting the authors' released FIND checkpoints (``find_focalt_llama_x640.pt``,
``find_focall_llama_x640.pt``) into find_ros model directories.

The one place in the package that reads a pickle: the checkpoint is read once with
``torch.load(weights_only=True)``. Everything else is decided from the tensors and, for what
shapes cannot tell (attention heads, thresholds, token lengths, the language layer), from the
authors' YAML layout, with the released models' values as defaults.

The output is an ordinary model directory: ``config.json`` (trained, with the source file's name,
SHA-256 and variant), ``model.safetensors`` (neck, sampler, interface, heads, point-sampling
weights) and ``vision/`` (the X-Decoder FocalNet backbone). The language model (LLaMA-7B) is not
part of the released files; the config names it.

Every tensor of the source is accounted for: mapped onto one of our parameters (copied,
transposed, split into q/k/v, rows reordered), or a training-only buffer checked and dropped.
Our parameters without a source tensor get a neutral value (zero biases; the authors have none).
A source that does not fit is refused with every missing, unexpected and wrongly shaped key named.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from find_ros.model import checkpoint
from find_ros.model.config import FindConfig
from find_ros.model.transformer_fpn import NECK_NAME
from find_ros.model.xdecoder_focalnet import FocalNetSpec, XDecoderFocalNet, save_backbone

WRAPPER_KEYS = ("model", "state_dict", "module")
PREFIXES = ("module.", "model.")
BACKBONE = "backbone."
PIXEL_DECODER = "sem_seg_head.pixel_decoder."
PREDICTOR = "sem_seg_head.predictor."
LANG = PREDICTOR + "lang_encoder."
# A LLaMA-architecture language model's parameter names; the authors' training state can carry
# one under the predictor's language encoder. Its weights are the language model's, not ours.
LLAMA_NAME = re.compile(
    r"(^|\.)(embed_tokens|lm_head|rotary_emb|input_layernorm|post_attention_layernorm|[qkvo]_proj|"
    r"(gate|up|down)_proj|layers\.\d+\.(attention|feed_forward)|tok_embeddings)(\.|$)"
)
# Buffers of the authors' training code, unused at inference: checked, then dropped.
TRAINING_BUFFERS = {"dilation_kernel": (1, 1, 3, 3), "criterion.empty_weight": None}
# Our parameters with no counterpart in the released models, and the value that makes them inert.
NEUTRAL = {
    "heads.semantic.bias": "zeros (class_embed has no bias)",
    "sampler.text_projection.bias": "zeros (lang_proj has no bias)",
    "sampler.visual_embed": "zeros (no visual-token marker)",
    "heads.void_embedding": "zeros (the class list's last name, 'background', is the no-object class)",
}
VISION_FILE, MODEL_FILE = "vision", "model"
IMAGENET_MEAN_255 = (123.675, 116.28, 103.53)
IMAGENET_STD_255 = (58.395, 57.12, 57.375)
RELEASED_INPUT_SIZE = 640  # the "x640" of the released file names
# The literal phrase of a visual entity in the authors' instructions; its tokens stay in the sentence.
OFFICIAL_PLACEHOLDER = "[INTERACTIVE]"


class CheckpointMismatch(ValueError):
    """The source does not fit: every missing, unexpected and wrongly shaped key, by name."""

    def __init__(self, source: str, missing: list[str], unexpected: list[str], wrong_shape: list[str]) -> None:
        self.missing, self.unexpected, self.wrong_shape = missing, unexpected, wrong_shape
        parts = [f"{title} ({len(items)}): {', '.join(items)}"
                 for title, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape))
                 if items]
        super().__init__(f"{source} is not a FIND checkpoint this converter reads; " + "; ".join(parts))


# ------------------------------------------------------------------------------------ the source


@dataclass
class SourceCheckpoint:
    state: dict[str, Tensor]
    name: str
    sha256: str
    wrapper: str  # how the tensors were found, e.g. 'flat' or "['model'], prefix 'module.'"
    ignored: list[str] = field(default_factory=list)  # language-model keys left out


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _unwrap(obj: Any, path: Path) -> tuple[dict[str, Any], str]:
    steps = []
    while isinstance(obj, Mapping) and not all(isinstance(v, Tensor) for v in obj.values()):
        inner = next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            kinds = sorted({type(v).__name__ for v in obj.values() if not isinstance(v, Tensor)})
            raise ValueError(f"{path}: expected a dict of tensors or a {{{'|'.join(WRAPPER_KEYS)}: ...}} wrapper; "
                             f"found values of type {', '.join(kinds)}")
        steps.append(inner)
        obj = obj[inner]
    if not isinstance(obj, Mapping) or not obj:
        raise ValueError(f"{path}: expected a non-empty dict of tensors, got {type(obj).__name__}")
    state = dict(obj)
    prefixes = []
    stripped = True
    while stripped:
        stripped = False
        for prefix in PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                prefixes.append(prefix)
                stripped = True
    how = f"{steps}" if steps else "flat"
    return state, how + (f", prefix {' '.join(repr(p) for p in prefixes)}" if prefixes else "")


def is_language_model_key(key: str) -> bool:
    if key.startswith(LANG):
        return key[len(LANG):] not in ("lang_proj", "logit_scale")
    return bool(LLAMA_NAME.search(key)) and not key.startswith((BACKBONE, PIXEL_DECODER))


def read_checkpoint(path: str | Path) -> SourceCheckpoint:
    """Read the released file once (``weights_only=True``: tensors and plain containers only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    sha = file_sha256(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise ValueError(f"{path}: not a readable PyTorch checkpoint with tensors only ({error})") from error
    state, how = _unwrap(obj, path)
    ignored = sorted(k for k in state if is_language_model_key(k))
    kept = {k: v for k, v in state.items() if k not in set(ignored)}
    return SourceCheckpoint(kept, path.name, sha, how, ignored)


# -------------------------------------------------------------------------------- the YAML layout


@dataclass(frozen=True)
class OfficialSettings:
    """What the tensors cannot tell, from the authors' YAML; defaults are the released models'."""

    num_heads: int = 8
    patch_size: int = 4
    context_length: int = 77
    class_token_length: int = 150
    feature_layer: int = -12
    object_mask_threshold: float = 0.8
    overlap_threshold: float = 0.8
    detections_per_image: int = 100
    size_divisibility: int = 32
    language_model: str = "huggyllama/llama-7b"
    # Sizes the YAML states; they must agree with the tensors' shapes (checked after inference).
    declared: dict[str, Any] = field(default_factory=dict)


_SETTING_PATHS = {
    "num_heads": "MODEL.DECODER.NHEADS",
    "patch_size": "MODEL.BACKBONE.FOCAL.PATCH_SIZE",
    "context_length": "MODEL.TEXT.CONTEXT_LENGTH",
    "class_token_length": "MODEL.DECODER.MASK.CLASS_TOKEN_LENGTH",
    "feature_layer": "MODEL.TEXT.FEATURE_LAYER",
    "object_mask_threshold": "MODEL.DECODER.TEST.OBJECT_MASK_THRESHOLD",
    "overlap_threshold": "MODEL.DECODER.TEST.OVERLAP_THRESHOLD",
    "detections_per_image": "COCO.TEST.DETECTIONS_PER_IMAGE",
    "size_divisibility": "MODEL.DECODER.SIZE_DIVISIBILITY",
    "language_model": "MODEL.TEXT.NAME",
}
_DECLARED_PATHS = {
    "backbone": "MODEL.BACKBONE.NAME",
    "embed_dim": "MODEL.BACKBONE.FOCAL.EMBED_DIM",
    "depths": "MODEL.BACKBONE.FOCAL.DEPTHS",
    "focal_levels": "MODEL.BACKBONE.FOCAL.FOCAL_LEVELS",
    "focal_windows": "MODEL.BACKBONE.FOCAL.FOCAL_WINDOWS",
    "conv_dim": "MODEL.ENCODER.CONVS_DIM",
    "mask_dim": "MODEL.ENCODER.MASK_DIM",
    "encoder_layers": "MODEL.ENCODER.TRANSFORMER_ENC_LAYERS",
    "hidden_dim": "MODEL.DECODER.HIDDEN_DIM",
    "ffn_dim": "MODEL.DECODER.DIM_FEEDFORWARD",
    "dec_layers": "MODEL.DECODER.DEC_LAYERS",
    "num_queries": "MODEL.DECODER.NUM_OBJECT_QUERIES",
    "dim_proj": "MODEL.DIM_PROJ",
    "language_width": "MODEL.TEXT.WIDTH",
    "spatial_memories": "ATTENTION_ARCH.SPATIAL_MEMORIES",
}


def _lookup(tree: Mapping[str, Any], dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def read_settings(path: str | Path | None) -> tuple[OfficialSettings, Path | None]:
    """Settings from a YAML in the authors' layout (``MODEL: ...``; a file whose ``overrides:``
    section holds that layout, as the reference fixtures', is read from that section). Returns the
    settings and the YAML's directory, against which a relative ``MODEL.TEXT.NAME`` is resolved."""
    if path is None:
        return OfficialSettings(), None
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML ({error})") from error
    if isinstance(data, Mapping) and isinstance(data.get("overrides"), Mapping):
        data = data["overrides"]
    if not isinstance(data, Mapping) or not isinstance(data.get("MODEL"), Mapping):
        raise ValueError(f"{path}: expected the authors' config layout (a top-level MODEL section)")
    values: dict[str, Any] = {}
    for name, dotted in _SETTING_PATHS.items():
        found = _lookup(data, dotted)
        if found is not None:
            values[name] = found
    for key, expected in (("PIXEL_MEAN", IMAGENET_MEAN_255), ("PIXEL_STD", IMAGENET_STD_255)):
        found = _lookup(data, f"INPUT.{key}")
        if found is not None and [round(float(v), 3) for v in found] != [round(v, 3) for v in expected]:
            raise ValueError(f"{path}: INPUT.{key} {found} is not the ImageNet statistics {list(expected)} "
                             "the released models use; other normalisations are not supported")
    declared = {name: _lookup(data, dotted) for name, dotted in _DECLARED_PATHS.items()}
    declared = {k: v for k, v in declared.items() if v is not None}
    try:
        settings = OfficialSettings(**values, declared=declared)
    except TypeError as error:
        raise ValueError(f"{path}: {error}") from error
    return settings, path.parent


# ---------------------------------------------------------------------------- sizes from shapes


@dataclass(frozen=True)
class OfficialLayout:
    """The sizes of one released-format checkpoint, read from its tensors' shapes."""

    backbone: FocalNetSpec
    conv_dim: int
    mask_dim: int
    encoder_layers: int
    hidden_dim: int
    ffn_dim: int
    num_layers: int
    num_queries: int
    dim_proj: int
    language_width: int
    num_levels: int
    spatial_memories: int

    @property
    def variant(self) -> str:
        return "FIND-T (FocalNet-DW)" if self.backbone.variant == "focal_dw" else "FIND-L (FocalNet)"


def _count(state: Mapping[str, Tensor], prefix: str) -> int:
    """How many consecutive indices ``prefix{i}.`` occur."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = {int(m.group(1)) for k in state if (m := pattern.match(k))}
    return max(found) + 1 if found else 0


def infer_layout(state: Mapping[str, Tensor], settings: OfficialSettings, source: str = "checkpoint") -> OfficialLayout:
    anchors = [BACKBONE + "patch_embed.proj.weight", PIXEL_DECODER + "input_proj.weight",
               PIXEL_DECODER + "mask_features.weight", PREDICTOR + "query_feat.weight", PREDICTOR + "class_embed",
               LANG + "lang_proj", PREDICTOR + "level_embed.weight"]
    absent = [k for k in anchors if k not in state]
    if absent:  # too little to size the model: name what is missing and what belongs to no part of it
        foreign = sorted(k for k in state if not k.startswith((BACKBONE, PIXEL_DECODER, PREDICTOR))
                         and k not in TRAINING_BUFFERS)
        raise CheckpointMismatch(source, absent, foreign, [])

    def shape(key: str, dim: int = 0) -> int:
        return int(state[key].shape[dim]) if key in state and state[key].dim() > dim else 0

    stages = _count(state, BACKBONE + "layers.")
    depths = tuple(_count(state, f"{BACKBONE}layers.{s}.blocks.") for s in range(stages))
    levels = tuple(_count(state, f"{BACKBONE}layers.{s}.blocks.0.modulation.focal_layers.") for s in range(stages))
    windows = tuple(shape(f"{BACKBONE}layers.{s}.blocks.0.modulation.focal_layers.0.0.weight", 3) or 3
                    for s in range(stages))
    embed = shape(BACKBONE + "patch_embed.proj.weight")
    fc1 = shape(BACKBONE + "layers.0.blocks.0.mlp.fc1.weight")
    depthwise = any(".dw1." in k for k in state if k.startswith(BACKBONE))
    try:
        spec = FocalNetSpec("focal_dw" if depthwise else "focal", embed, depths, levels, windows,
                            fc1 / embed if fc1 and embed else 4.0, int(settings.patch_size))
    except ValueError as error:
        raise ValueError(f"{source}: its backbone tensors do not describe a FocalNet ({error})") from error
    layout = OfficialLayout(
        backbone=spec,
        conv_dim=shape(PIXEL_DECODER + "input_proj.weight"),
        mask_dim=shape(PIXEL_DECODER + "mask_features.weight"),
        encoder_layers=_count(state, PIXEL_DECODER + "transformer.encoder.layers."),
        hidden_dim=shape(PREDICTOR + "query_feat.weight", 1),
        ffn_dim=shape(PREDICTOR + "transformer_ffn_layers.0.linear1.weight"),
        num_layers=_count(state, PREDICTOR + "content_attention.layers."),
        num_queries=shape(PREDICTOR + "query_feat.weight"),
        dim_proj=shape(PREDICTOR + "class_embed", 1),
        language_width=shape(LANG + "lang_proj"),
        num_levels=shape(PREDICTOR + "level_embed.weight"),
        spatial_memories=shape(PREDICTOR + "spatial_embed.weight"),
    )
    _check_declared(layout, settings, source)
    problems = []
    if layout.conv_dim != layout.hidden_dim:
        problems.append(f"the pixel decoder's width {layout.conv_dim} differs from the decoder's {layout.hidden_dim} "
                        "(the released models feed its levels to the decoder without a projection)")
    if layout.dim_proj != layout.hidden_dim:
        problems.append(f"DIM_PROJ {layout.dim_proj} differs from the decoder width {layout.hidden_dim}")
    if layout.num_queries < 2:
        problems.append("the decoder needs at least one object proposal and the image query")
    if problems:
        raise ValueError(f"{source}: unsupported layout: " + "; ".join(problems))
    return layout


def _check_declared(layout: OfficialLayout, settings: OfficialSettings, source: str) -> None:
    """A size the YAML states must be the one the tensors have: otherwise the YAML is another model's."""
    spec = layout.backbone
    actual = {
        "backbone": spec.variant, "embed_dim": spec.embed_dim, "depths": list(spec.depths),
        "focal_levels": list(spec.focal_levels), "focal_windows": list(spec.focal_windows),
        "conv_dim": layout.conv_dim, "mask_dim": layout.mask_dim, "encoder_layers": layout.encoder_layers,
        "hidden_dim": layout.hidden_dim, "ffn_dim": layout.ffn_dim, "dec_layers": layout.num_layers + 1,
        "num_queries": layout.num_queries, "dim_proj": layout.dim_proj, "language_width": layout.language_width,
        "spatial_memories": layout.spatial_memories,
    }
    clashes = []
    for name, stated in settings.declared.items():
        value = list(stated) if isinstance(stated, (list, tuple)) else stated
        if value != actual[name]:
            clashes.append(f"{_DECLARED_PATHS[name]} is {stated} in the config but {actual[name]} in the tensors")
    if clashes:
        raise ValueError(f"{source} does not match its config: " + "; ".join(clashes))


def find_config(layout: OfficialLayout, settings: OfficialSettings, language_model: str,
                provenance: dict[str, Any]) -> FindConfig:
    return FindConfig(
        vision_model=checkpoint.VISION_DIR, language_model=language_model, language_layer=int(settings.feature_layer),
        hidden_dim=layout.hidden_dim, num_heads=int(settings.num_heads), ffn_dim=layout.ffn_dim,
        num_layers=layout.num_layers, num_object_queries=layout.num_queries - 1, num_global_queries=1,
        num_levels=layout.num_levels, mask_dim=layout.mask_dim, input_size=RELEASED_INPUT_SIZE,
        size_divisibility=int(settings.size_divisibility), max_text_tokens=int(settings.context_length),
        max_class_tokens=int(settings.class_token_length), neck=NECK_NAME, neck_layers=layout.encoder_layers,
        spatial_memories=layout.spatial_memories, object_mask_threshold=float(settings.object_mask_threshold),
        overlap_threshold=float(settings.overlap_threshold), detections_per_image=int(settings.detections_per_image),
        decoder_style="official", placeholder_word=OFFICIAL_PLACEHOLDER, trained=True, source=provenance,
    )


# ------------------------------------------------------------------------------------- key map


@dataclass(frozen=True)
class Rule:
    """How one source tensor becomes ours: ``copy``, ``transpose`` (the authors store ``x @ W``
    matrices, we store Linear weights), ``qkv`` (an ``in_proj`` stacked q, k, v → three Linear
    parameters), ``swap_rows`` (``pn_indicator``: positive first; ours: negative first), or
    ``drop`` (training-only buffer)."""

    kind: str
    targets: tuple[tuple[str, str], ...]  # (file, key) with file 'vision' or 'model'


def _decoder_rules(layout: OfficialLayout) -> dict[str, Rule]:
    rules: dict[str, Rule] = {}

    def add(official: str, kind: str, *ours: str) -> None:
        rules[PREDICTOR + official] = Rule(kind, tuple((MODEL_FILE, k) for k in ours))

    def attention(official: str, ours: str) -> None:
        for part in ("weight", "bias"):
            add(f"{official}.in_proj_{part}", "qkv", *(f"{ours}.{p}.{part}" for p in "qkv"))
            add(f"{official}.out_proj.{part}", "copy", f"{ours}.out.{part}")

    for i in range(layout.num_layers):
        ours = f"interface.layers.{i}"
        attention(f"content_attention.layers.{i}.multihead_attn", f"{ours}.content")
        attention(f"condition_attention.layers.{i}.self_attn", f"{ours}.conditional")
        for part in ("weight", "bias"):
            add(f"content_attention.layers.{i}.norm.{part}", "copy", f"{ours}.norm_content.{part}")
            add(f"condition_attention.layers.{i}.norm.{part}", "copy", f"{ours}.norm_conditional.{part}")
            add(f"transformer_ffn_layers.{i}.linear1.{part}", "copy", f"{ours}.ffn.0.{part}")
            add(f"transformer_ffn_layers.{i}.linear2.{part}", "copy", f"{ours}.ffn.3.{part}")
            add(f"transformer_ffn_layers.{i}.norm.{part}", "copy", f"{ours}.norm_ffn.{part}")
    for part in ("weight", "bias"):
        add(f"decoder_norm.{part}", "copy", f"heads.norm.{part}")
        for j in range(3):
            add(f"mask_embed.layers.{j}.{part}", "copy", f"heads.pixel.layers.{j}.{part}")
    add("query_feat.weight", "copy", "interface.query_feat.weight")
    add("query_embed.weight", "copy", "interface.query_pos.weight")
    add("level_embed.weight", "copy", "sampler.level_embed.weight")
    add("pn_indicator.weight", "swap_rows", "sampler.indicator.weight")
    add("class_embed", "transpose", "heads.semantic.weight")
    add("lang_encoder.lang_proj", "transpose", "sampler.text_projection.weight")
    add("lang_encoder.logit_scale", "copy", "heads.logit_scale")
    if layout.spatial_memories:  # the point-sampling weights come with the memory slots (parts.py)
        for level in range(layout.num_levels):
            add(f"mask_sptial_embed.{level}", "copy", f"point_sampling.level_projections.{level}")
        add("spatial_embed.weight", "copy", "point_sampling.memory_embed.weight")
        add("spatial_featured.weight", "copy", "point_sampling.memory_featured.weight")
    return rules


def target_shapes(config: FindConfig, spec: FocalNetSpec, language_width: int) -> dict[tuple[str, str], torch.Size]:
    """Every tensor our modules of these sizes hold, built on the meta device (nothing allocated)."""
    from find_ros.model.parts import trainable_parts

    with torch.device("meta"):
        backbone = XDecoderFocalNet(spec)
        parts = trainable_parts(config, spec.channels, spec.strides, language_width)
    shapes = {(VISION_FILE, k): v.shape for k, v in backbone.state_dict().items()}
    for name, module in parts.items():
        shapes.update({(MODEL_FILE, f"{name}.{k}"): v.shape for k, v in module.state_dict().items()})
    return shapes


def key_map(layout: OfficialLayout, targets: Mapping[tuple[str, str], torch.Size]) -> dict[str, Rule]:
    """Source key → rule, for every tensor a checkpoint of ``layout`` holds."""
    rules = {BACKBONE + key: Rule("copy", ((VISION_FILE, key),)) for file, key in targets if file == VISION_FILE}
    rules.update({PIXEL_DECODER + key[len("neck."):]: Rule("copy", ((MODEL_FILE, key),))
                  for file, key in targets if file == MODEL_FILE and key.startswith("neck.")})
    rules.update(_decoder_rules(layout))
    rules.update({key: Rule("drop", ()) for key in TRAINING_BUFFERS})
    covered = {t for rule in rules.values() for t in rule.targets} | {(MODEL_FILE, k) for k in NEUTRAL}
    if covered != set(targets):  # the map and our modules disagree: a bug here, not in the file
        raise RuntimeError(f"converter key map out of date: unmapped {sorted(set(targets) - covered)}, "
                           f"unknown {sorted(covered - set(targets))}")
    return rules


def source_shape(rule: Rule, targets: Mapping[tuple[str, str], torch.Size]) -> tuple[int, ...]:
    """The shape the source tensor of a mapped (not dropped) rule must have."""
    shape = tuple(targets[rule.targets[0]])
    if rule.kind == "transpose":
        return shape[::-1]
    if rule.kind == "qkv":
        return (3 * shape[0], *shape[1:])
    return shape


def check_source(state: Mapping[str, Tensor], rules: Mapping[str, Rule],
                 targets: Mapping[tuple[str, str], torch.Size], source: str) -> None:
    missing = sorted(set(rules) - set(state))
    unexpected = sorted(set(state) - set(rules))
    wrong = []
    for key in sorted(set(rules) & set(state)):
        given = tuple(state[key].shape)
        if rules[key].kind == "drop":  # a training buffer: fixed shape, or one dimension of any length
            wanted = TRAINING_BUFFERS[key]
            if (len(given) != 1) if wanted is None else (given != wanted):
                wrong.append(f"{key} {list(given)} (expected {'one dimension' if wanted is None else list(wanted)})")
        elif given != (wanted := source_shape(rules[key], targets)):
            wrong.append(f"{key} {list(given)} (expected {list(wanted)})")
    if missing or unexpected or wrong:
        raise CheckpointMismatch(source, missing, unexpected, wrong)


def apply_rules(state: Mapping[str, Tensor], rules: Mapping[str, Rule],
                targets: Mapping[tuple[str, str], torch.Size]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """(vision state, model state), fp32, contiguous; our parameters without a source are neutral."""
    out: dict[str, dict[str, Tensor]] = {VISION_FILE: {}, MODEL_FILE: {}}
    for key, rule in rules.items():
        tensor = state[key].detach().to(torch.float32)
        if rule.kind == "drop":
            continue
        if rule.kind == "transpose":
            values = [tensor.T]
        elif rule.kind == "qkv":
            values = list(tensor.chunk(3, dim=0))
        elif rule.kind == "swap_rows":
            values = [tensor.flip(0)]
        else:
            values = [tensor]
        for (file, target), value in zip(rule.targets, values):
            out[file][target] = value.contiguous().clone()
    for key in NEUTRAL:
        out[MODEL_FILE][key] = torch.zeros(targets[(MODEL_FILE, key)])
    return out[VISION_FILE], out[MODEL_FILE]


# --------------------------------------------------------------------------------- the command


def _language_width(name: str, base: Path | None) -> int | None:
    """The hidden size of the language model ``name`` if it can be found offline, else None."""
    from find_ros.model.encoders import _read_config

    try:
        _, config = _read_config(name, base, "language model")
    except (OSError, ValueError):
        return None
    return int(getattr(config, "hidden_size", 0) or 0) or None


def _resolve_language(language: str | None, settings: OfficialSettings, yaml_dir: Path | None) -> str:
    name = language or str(settings.language_model)
    if language is None and yaml_dir is not None and not Path(name).is_absolute() and (yaml_dir / name).is_dir():
        name = str(yaml_dir / name)
    if Path(name).is_dir():
        return str(Path(name).resolve())
    if name.startswith(("/", "./", "../", "~")):
        raise FileNotFoundError(f"language model directory not found: {name}")
    return name


def import_find(checkpoint_path: str | Path, out: str | Path | None, *, config_path: str | Path | None = None,
                language: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Convert a released FIND checkpoint into the model directory ``out``; returns a report.
    With ``dry_run`` nothing is written and the report lists the whole mapping."""
    settings, yaml_dir = read_settings(config_path)
    language_model = _resolve_language(language, settings, yaml_dir)
    source = read_checkpoint(checkpoint_path)
    layout = infer_layout(source.state, settings, str(checkpoint_path))
    provenance = {"format": "FIND (UX-Decoder) checkpoint", "file": source.name, "sha256": source.sha256,
                  "variant": layout.variant, "backbone": layout.backbone.variant, "wrapper": source.wrapper,
                  "config": Path(config_path).name if config_path is not None else None}
    config = find_config(layout, settings, language_model, provenance)
    targets = target_shapes(config, layout.backbone, layout.language_width)
    rules = key_map(layout, targets)
    check_source(source.state, rules, targets, str(checkpoint_path))
    width = _language_width(language_model, None)
    if width is not None and width != layout.language_width:
        raise ValueError(f"the language model {language_model!r} has width {width}, but the checkpoint's lang_proj "
                         f"expects {layout.language_width} (LLaMA-7B: 4096); pass the model it was trained with")
    report: dict[str, Any] = {
        "source": provenance, "out": None if out is None else str(out), "variant": layout.variant,
        "language_model": language_model, "language_checked": width is not None,
        "tensors": len(source.state), "ignored_language_keys": len(source.ignored),
        "kinds": {kind: sum(r.kind == kind for r in rules.values()) for kind in ("copy", "transpose", "qkv", "swap_rows", "drop")},
        "neutral": NEUTRAL, "config": config.to_dict(),
    }
    if dry_run:
        report["mapping"] = {key: {"kind": rule.kind, "to": [f"{file}:{name}" for file, name in rule.targets]}
                             for key, rule in sorted(rules.items())}
        return report
    if out is None:
        raise ValueError("an output directory is needed unless dry_run is set")
    vision_state, model_state = apply_rules(source.state, rules, targets)
    write_model_dir(Path(out), config, layout.backbone, vision_state, model_state)
    return report


def write_model_dir(out: Path, config: FindConfig, spec: FocalNetSpec, vision_state: dict[str, Tensor],
                    model_state: dict[str, Tensor]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    vision_dir = out / checkpoint.VISION_DIR
    if vision_dir.exists():
        shutil.rmtree(vision_dir)
    save_backbone(vision_dir, spec, vision_state)
    checkpoint.save_weights(model_state, out / checkpoint.WEIGHTS_NAME)
    config.save(out / checkpoint.CONFIG_NAME)
    return out
