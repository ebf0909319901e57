"""FindModel: FIND (Interfacing Foundation Models' Embeddings) as one inference/training API.

Every surface of find_ros — ROS nodes, the nerfstudio field, training, benchmarks, the CLI — calls
this class and nothing below it::

    model = FindModel.from_pretrained(path, device="auto")            # or default_model_dir()
    frame = model.encode_image(rgb)                                   # once per frame (batch ok)
    instr = model.encode_instruction("the mug left of <0>", [crop])   # once per instruction
    result = model.ground(frame, instr)[0]                            # per entity: mask, score, box
    seg = model.segment(frame, ["cup", "table"])[0]                   # panoptic / semantic / instance
    sims = model.retrieve(frames, ["a red mug"]).similarity           # (images, queries)
    out = model.run("interleave_grounding", frame, interleave=instr)  # any registered task, raw outputs

Construction and files (:mod:`find_ros.model.build`; these methods call it)
    ``FindModel.from_pretrained(path, device="auto", dtype=None) -> FindModel``
    ``FindModel.from_config(config, *, base_dir=None, device="auto", dtype=None, seed=None)``
    (fresh, untrained interface), ``save_pretrained(path, *, include_encoders=False) -> Path``.
    ``device="auto"`` picks CUDA when present; ``dtype=None`` is bf16 (or fp16) on GPU, fp32 on CPU.

Encoding (reusable values, see :mod:`find_ros.model.embeddings`)
    ``encode_image(images) -> ImageEmbeddings``: RGB uint8 (H, W, 3), a list of them, or (B, H, W, 3).
    ``encode_instruction(text, visuals=()) -> InstructionEmbeddings``: the grammar of
    :mod:`find_ros.instructions`; visuals are RGB crops or :class:`RegionRef` (a box/mask of an
    already encoded image). ``encode_texts``, ``encode_classes`` (names or :class:`VisualClass`),
    ``encode_spatial`` (:class:`SpatialPrompt`) give :class:`TokenSet` prompts.

Tasks
    ``run(task, image_embeddings, **prompts) -> TaskOutput`` for any registered prototype
    (:mod:`find_ros.model.prototypes`); ``readout(output)`` applies the task's read-out
    (:mod:`find_ros.model.readout`).
    Convenience: ``ground`` / ``ground_phrases`` / ``segment_interactive`` -> list[GroundingResult],
    ``ground_many`` (several instructions, one interface pass) -> one such list per instruction,
    ``segment`` -> list[SegmentationResult], ``embed_images`` / ``embed_captions`` /
    ``embed_instructions`` -> unit vectors, ``retrieve`` -> RetrievalResult.

Gradients flow only in ``train()`` mode (through neck, sampler, interface and heads); the frozen
encoders never get gradients. In eval mode every call runs without autograd.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from find_ros.instructions import ParsedInstruction, parse_instruction
from find_ros.model import checkpoint, point_sampling, readout
from find_ros.model.config import FindConfig
from find_ros.model.embeddings import (
    ImageEmbeddings,
    InstructionEmbeddings,
    RegionRef,
    SpatialPrompt,
    TokenSet,
    VisualClass,
)
from find_ros.model.encoders import HFLanguageEncoder, TextEncoding, VisionEncoder
from find_ros.model.heads import Heads, Predictions
from find_ros.model.instruction_batch import InstructionBatch, batch_instructions
from find_ros.model.inputs import as_image_list, as_sequence, check_image, prepare_images
from find_ros.model.interface import FindInterface, InterfaceState
from find_ros.model.parts import trainable_parts
from find_ros.model.prototypes import TaskPrototype, build_layout, get_prototype
from find_ros.model.presence import PresenceSettings
from find_ros.model.results import GroundingResult, RetrievalResult, SegmentationResult, SegmentationSettings
from find_ros.model import sampler as sampler_module
from find_ros.model.sampler import EmbeddingSampler
from find_ros.model.text_budget import TextBudget


@dataclass
class TaskOutput:
    """Raw outputs of one task run: the prompts as token sets, the interface state, the heads'
    predictions after the last layer, and ``aux`` (deep supervision, train mode): predictions from
    the initial queries and after every layer but the last."""

    task: str
    prototype: TaskPrototype
    image: ImageEmbeddings | None
    prompts: dict[str, TokenSet]
    state: InterfaceState
    predictions: Predictions | None = None
    aux: list[Predictions] = field(default_factory=list)


class FindModel(nn.Module):
    def __init__(self, config: FindConfig, vision_encoder: VisionEncoder, language_encoder: HFLanguageEncoder) -> None:
        super().__init__()
        self.config = config
        self.vision_encoder = vision_encoder
        self.language_encoder = language_encoder
        parts = trainable_parts(config, vision_encoder.channels, vision_encoder.strides, language_encoder.hidden_size)
        self.neck: nn.Module = parts.pop("neck")
        self.sampler: EmbeddingSampler = parts.pop("sampler")
        self.interface: FindInterface = parts.pop("interface")
        self.heads: Heads = parts.pop("heads")
        for name, module in parts.items():  # the released models' extra weights (point_sampling)
            self.add_module(name, module)
        self.source_dir: Path | None = None
        self.eval()

    # ------------------------------------------------------------------------ building and files
    # Thin doors to find_ros.model.build (imported on call: build imports this module).

    @classmethod
    def from_config(cls, config: FindConfig, *, base_dir: str | Path | None = None, device: str | torch.device = "auto",
                    dtype: str | torch.dtype | None = None, seed: int | None = None) -> FindModel:
        """Load the encoders the config names and initialise a fresh (untrained) interface."""
        from find_ros.model import build

        return build.from_config(config, base_dir=base_dir, device=device, dtype=dtype, seed=seed)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "auto",
                        dtype: str | torch.dtype | None = None) -> FindModel:
        """The model saved in directory ``path`` (config.json + model.safetensors)."""
        from find_ros.model import build

        return build.from_pretrained(path, device, dtype)

    def save_pretrained(self, path: str | Path, *, include_encoders: bool = False) -> Path:
        """Write config.json + model.safetensors (and the encoders with ``include_encoders``)."""
        from find_ros.model import build

        return build.save_pretrained(self, path, include_encoders=include_encoders)

    def place(self, device: str | torch.device = "auto", dtype: str | torch.dtype | None = None) -> FindModel:
        """Move to ``device`` ("auto": CUDA when present) and ``dtype`` (None: bf16/fp16 on GPU, fp32 on CPU)."""
        from find_ros.model import build

        return build.place(self, device, dtype)

    @property
    def device(self) -> torch.device:
        return self.heads.logit_scale.device

    @property
    def dtype(self) -> torch.dtype:
        return self.heads.logit_scale.dtype

    @property
    def embed_dim(self) -> int:
        """Width of interface tokens and semantic embeddings."""
        return self.config.hidden_dim

    @property
    def presence(self) -> PresenceSettings:
        """The presence decision of match read-outs (config key ``presence``; :mod:`find_ros.model.presence`)."""
        return PresenceSettings.from_dict(self.config.presence)

    @property
    def untrained(self) -> bool:
        return not self.config.trained

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if not n.startswith(checkpoint.FROZEN_PREFIXES)]

    def parameter_counts(self) -> dict[str, int]:
        def count(module: nn.Module) -> int:
            return sum(p.numel() for p in module.parameters())

        return {"vision_encoder": count(self.vision_encoder), "language_encoder": count(self.language_encoder),
                "trainable": sum(p.numel() for p in self.trainable_parameters())}

    @contextlib.contextmanager
    def _autograd(self) -> Iterator[bool]:
        """Autograd only while training; yields whether it is on."""
        on = self.training and torch.is_grad_enabled()
        with torch.set_grad_enabled(on):
            yield on

    def _from_frozen(self, x: Tensor, grad: bool) -> Tensor:
        # Encoder outputs are inference-mode tensors; autograd may not save them, so copy when training.
        x = x.to(self.dtype)
        return x.clone() if grad else x

    def _text_from_frozen(self, encoding: TextEncoding, grad: bool) -> TextEncoding:
        return TextEncoding(self._from_frozen(encoding.tokens, grad),
                            encoding.attention_mask.clone() if grad else encoding.attention_mask,
                            encoding.offsets.clone() if grad else encoding.offsets)

    # ------------------------------------------------------------------------------------ images

    def encode_image(self, images: np.ndarray | Sequence[np.ndarray]) -> ImageEmbeddings:
        """Encode RGB uint8 images once; the result serves every task on these frames."""
        return self._encode_images(as_image_list(images), self.config.input_size, self.config.resize_rule,
                                   self.config.max_input_size)

    def _encode_images(self, images: list[np.ndarray], long_side: int, rule: str = "long_side",
                       max_side: int = 0) -> ImageEmbeddings:
        vision = self.vision_encoder
        prepared = prepare_images(images, long_side, self.config.size_divisibility, vision.pixel_mean,
                                  vision.pixel_std, self.device, self.dtype, rule, max_side)
        maps = vision(prepared.pixels)
        with self._autograd() as grad:
            levels, pixel = self.neck([self._from_frozen(m, grad) for m in maps], tuple(prepared.pixels.shape[-2:]))
        return ImageEmbeddings(levels=tuple(levels), pixel=pixel, image_sizes=prepared.image_sizes,
                               resized_sizes=prepared.resized_sizes)

    # ------------------------------------------------------------------------------------ prompts

    def encode_texts(self, texts: Sequence[str], *, template: str | None = None, max_tokens: int | None = None) -> TokenSet:
        """One token group per text (captions, phrases, class descriptions), the LM's chosen layer
        projected to the interface; longer texts are cut at ``max_tokens``."""
        texts = as_sequence(texts, "texts")
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise ValueError(f"text {i} is empty or not a string")
        if not texts:
            return TokenSet.empty(self.config.hidden_dim, self.device, self.dtype)
        inputs = [template.format(c=t) for t in texts] if template else texts
        encoding = self.language_encoder(inputs, max_tokens or self.config.max_text_tokens)
        with self._autograd() as grad:
            return self.sampler.texts(self._text_from_frozen(encoding, grad), texts)

    def encode_classes(self, classes: Sequence[str | VisualClass], *, use_template: bool = True) -> TokenSet:
        """Class names (embedded as "Describe the concept of {c}."; with ``use_template=False`` the
        texts as they are, for long class descriptions) or :class:`VisualClass` example regions;
        one group per class, in the given order."""
        classes = as_sequence(classes, "classes")
        if not classes:
            raise ValueError("no classes given")
        names = [c for c in classes if isinstance(c, str)]
        visual = [c for c in classes if isinstance(c, VisualClass)]
        if len(names) + len(visual) != len(classes):
            raise ValueError("classes must be strings or VisualClass")
        sets = []
        if names:
            template = self.config.class_template if use_template else None
            read = [strip_class_suffixes(n, self.config.decoder.class_suffixes) for n in names] if use_template else names
            encoded = self.encode_texts(read, template=template, max_tokens=self.config.max_class_tokens)
            sets.append(TokenSet(encoded.tokens, encoded.groups, tuple(names)))
        if visual:
            with self._autograd():
                tokens = torch.stack([self.sampler.region_embeddings(v.regions)[0].mean(0) for v in visual])
                sets.append(self.sampler.single_tokens(tokens.to(self.dtype), [v.name for v in visual]))
        merged = TokenSet.cat(sets)  # names first, then visual classes; restore the given order
        order, seen_names, seen_visual = [], 0, 0
        for c in classes:
            if isinstance(c, str):
                order.append(seen_names)
                seen_names += 1
            else:
                order.append(len(names) + seen_visual)
                seen_visual += 1
        return TokenSet(merged.tokens, merged.groups[order], tuple(merged.labels[i] for i in order))

    def encode_instruction(self, instruction: str | ParsedInstruction,
                           visuals: Sequence[np.ndarray | RegionRef] = ()) -> InstructionEmbeddings:
        """An interleaved instruction ("the mug left of <0>", or as :func:`parse_instruction` parsed
        it) with its visual entities: RGB crops or :class:`RegionRef` regions of encoded frames.
        Errors name what is wrong (ValueError)."""
        visuals = as_sequence(visuals, "visuals")
        if isinstance(instruction, ParsedInstruction):
            parsed = instruction
            if set(parsed.visual_indices) != set(range(len(visuals))):
                raise ValueError(f"the instruction names visual entities {sorted(set(parsed.visual_indices))}, "
                                 f"but {len(visuals)} were given")
        else:
            parsed = parse_instruction(instruction, len(visuals))
        for k, v in enumerate(visuals):
            if isinstance(v, np.ndarray):
                check_image(v, k)
            elif not isinstance(v, RegionRef):
                raise ValueError(f"visual entity <{k}> must be an RGB uint8 crop or a RegionRef, got {type(v).__name__}")
        layout = TextBudget(self.language_encoder.tokenizer, self.language_encoder.token_limit(self.config.max_text_tokens),
                            self.config.placeholder_word).check(parsed)
        encoding = self.language_encoder([layout.text], self.config.max_text_tokens)
        if self.config.decoder.point_samples:
            return self._sampled_instruction(parsed, layout, encoding, visuals)
        with self._autograd() as grad:
            encoding = self._text_from_frozen(encoding, grad)
            tokens = torch.zeros(len(visuals), self.config.hidden_dim, device=self.device, dtype=self.dtype)
            pixels = torch.zeros(len(visuals), self.config.mask_dim, device=self.device, dtype=self.dtype)
            crops = [k for k, v in enumerate(visuals) if isinstance(v, np.ndarray)]
            if crops:
                crop_emb = self._encode_images([visuals[k] for k in crops], self.config.crop_size)
                t, p = self.sampler.crop_embeddings(crop_emb)
                tokens, pixels = tokens.index_copy(0, torch.tensor(crops, device=self.device), t), \
                    pixels.index_copy(0, torch.tensor(crops, device=self.device), p)
            regions = [k for k, v in enumerate(visuals) if isinstance(v, RegionRef)]
            if regions:
                t, p = self.sampler.region_embeddings([visuals[k] for k in regions])
                tokens, pixels = tokens.index_copy(0, torch.tensor(regions, device=self.device), t.to(self.dtype)), \
                    pixels.index_copy(0, torch.tensor(regions, device=self.device), p.to(self.dtype))
            return self.sampler.interleave(parsed, layout, encoding, tokens, pixels)

    def _sampled_instruction(self, parsed: ParsedInstruction, layout: Any, encoding: TextEncoding,
                             visuals: Sequence[np.ndarray | RegionRef]) -> InstructionEmbeddings:
        """The authors' instruction: legend tokens, and each visual entity's point samples from the
        image it points into (a region's frame, or the crop itself: their cross-image path)."""
        with self._autograd() as grad:
            encoding = self._text_from_frozen(encoding, grad)
            image_row = self.config.num_object_queries  # the image query's row of the query pool
            tokens, positions, groups = sampler_module.legend_tokens(
                parsed, layout, self.sampler.text_tokens(encoding)[0], encoding,
                self.interface.query_feat.weight[image_row], self.interface.query_pos.weight[image_row])
            empty = [parsed.entities[e].label for e in range(len(parsed.entities)) if not groups[e].any()]
            if empty:
                raise ValueError(f"entities {empty} have no tokens (beyond the language model's token limit?)")
            crops = [k for k, v in enumerate(visuals) if isinstance(v, np.ndarray)]
            crop_images = self._encode_images([visuals[k] for k in crops], self.config.crop_size) if crops else None
            sources = []
            for e, entity in enumerate(parsed.entities):
                if entity.visual_index is None:
                    continue
                visual = visuals[entity.visual_index]
                if isinstance(visual, RegionRef):
                    prompt = SpatialPrompt("mask", np.asarray(visual.mask)) if visual.mask is not None else \
                        SpatialPrompt("box", np.asarray(visual.box, dtype=np.float64))
                    image, index = visual.image, visual.index
                else:
                    image, index = crop_images, crops.index(entity.visual_index)
                    height, width = visual.shape[:2]
                    prompt = SpatialPrompt("box", np.array([0.0, 0.0, width, height]))
                sources.append((e, image, index, point_sampling.prompt_mask(prompt, image, index)))
            samples = point_sampling.entity_samples(
                self.point_sampling, sources, self.sampler.image_prompts, len(parsed.entities),
                [e.label for e in parsed.entities], self.sampler.indicator.weight.flip(0)) if sources else None
            refs = tokens.new_zeros(len(parsed.entities), self.config.mask_dim)
            return InstructionEmbeddings(parsed, tokens, groups, tuple(e.is_visual for e in parsed.entities), refs,
                                         positions, samples)

    def pool_segments(self, image: ImageEmbeddings, masks: np.ndarray | Tensor, index: int = 0) -> Tensor:
        """One embedding per (H, W) mask of image ``index`` (original size): the same region
        embedding a visual entity gets, (N, embed_dim) — e.g. to link segments across images."""
        masks = np.asarray(masks.cpu() if isinstance(masks, Tensor) else masks)
        if masks.ndim != 3:
            raise ValueError(f"masks must be (N, H, W), got shape {masks.shape}")
        with self._autograd():
            return self.sampler.region_embeddings([RegionRef(image, mask=m, index=index) for m in masks])[0]

    def encode_spatial(self, image: ImageEmbeddings, prompts: Sequence[SpatialPrompt]) -> TokenSet:
        prompts = as_sequence(prompts, "spatial prompts")
        if any(not isinstance(p, SpatialPrompt) for p in prompts):
            raise ValueError("spatial prompts must be SpatialPrompt objects")
        if not prompts:
            raise ValueError("no spatial prompts given")
        with self._autograd():
            if self.config.decoder.point_samples:
                return point_sampling.spatial_samples(self.point_sampling, image, self.sampler.image_prompts(image),
                                                      prompts, self.sampler.indicator.weight.flip(0))
            return self.sampler.spatial(image, prompts)

    def _prompt(self, name: str, source: str, group_by: str, value: Any, image: ImageEmbeddings | None) -> TokenSet:
        if isinstance(value, TokenSet):
            return value
        if source == "text":
            return self.encode_texts(value)
        if source == "class":
            return self.encode_classes(value)
        if source == "spatial":
            if image is None:
                raise ValueError(f"prompt {name!r}: spatial prompts need image embeddings")
            return self.encode_spatial(image, value)
        if source in ("interleave", "samples"):
            items = [value] if isinstance(value, InstructionEmbeddings) else as_sequence(value, f"prompt {name!r}")
            if any(not isinstance(i, InstructionEmbeddings) for i in items):
                raise ValueError(f"prompt {name!r} takes InstructionEmbeddings from encode_instruction")
            if not items:
                return TokenSet.empty(self.config.hidden_dim, self.device, self.dtype)
            if source == "samples":
                return TokenSet.cat([i.sample_set() for i in items])
            return TokenSet.cat([i.token_set(group_by) for i in items])
        raise ValueError(f"prompt {name!r} ({source}) takes a TokenSet, got {type(value).__name__}")

    # -------------------------------------------------------------------------------------- tasks

    def run(self, task: str, image_embeddings: ImageEmbeddings | None, *, deep_supervision: bool | None = None,
            **prompts: Any) -> TaskOutput:
        """Run a registered task. ``prompts`` are keyed by the prototype's prompt names; values are
        TokenSets or what the prompt's source takes (texts, classes, SpatialPrompts,
        InstructionEmbeddings). Deep supervision (predictions after every layer) defaults to on in
        train mode."""
        output = self.run_interface(task, image_embeddings, deep_supervision=deep_supervision, **prompts)
        return self.predict(output)

    def run_interface(self, task: str, image_embeddings: ImageEmbeddings | None, *,
                      deep_supervision: bool | None = None, **prompts: Any) -> TaskOutput:
        """The interface part of :meth:`run` (no final heads): for timing and custom heads."""
        proto = get_prototype(task, self.config.decoder.prototype_set)
        image_spec = proto.image_prompt
        names = {p.name for p in proto.token_prompts if p.samples_of is None}
        unknown = sorted(set(prompts) - names - ({image_spec.name} if image_spec else set()))
        if unknown:
            raise ValueError(f"task {task!r} has no prompt(s) {', '.join(unknown)}; it takes {', '.join(sorted(names))}")
        missing = sorted(names - set(prompts))
        if missing:
            raise ValueError(f"task {task!r} needs prompt(s) {', '.join(missing)}")
        if image_embeddings is not None and not isinstance(image_embeddings, ImageEmbeddings):
            raise ValueError("image_embeddings must come from FindModel.encode_image (or be None)")
        if image_embeddings is None and proto.readout.kind in ("match", "panoptic"):
            raise ValueError(f"task {task!r} predicts masks and needs image embeddings")
        if image_embeddings is not None and image_spec is None:
            raise ValueError(f"task {task!r} takes no image")
        if deep_supervision is None:
            deep_supervision = self.training
        with self._autograd():
            sets = {p.name: self._prompt(p.name, p.source, p.group_by, prompts[p.samples_of or p.name], image_embeddings)
                    for p in proto.token_prompts}
            batch = image_embeddings.batch_size if image_embeddings is not None else 1
            for name, s in sets.items():
                if s.tokens.shape[0] not in (1, batch):
                    raise ValueError(f"prompt {name!r} has a batch of {s.tokens.shape[0]}; the images {batch}")
            layout = build_layout(proto, {n: s.groups for n, s in sets.items()}, self.config.num_object_queries,
                                  self.config.num_global_queries, self.device)
            dim = self.config.hidden_dim
            tokens = torch.cat([sets[p.name].tokens.to(self.dtype).expand(batch, -1, -1) for p in proto.token_prompts],
                               dim=1) if sets else torch.zeros(batch, 0, dim, device=self.device, dtype=self.dtype)
            level_tokens = [(layout.token_slices[n], s.per_level) for n, s in sets.items() if s.per_level is not None]
            token_positions = torch.cat([(s.tokens if s.positions is None else s.positions).to(self.dtype).expand(batch, -1, -1)
                                         for s in sets.values()], dim=1) \
                if any(s.positions is not None for s in sets.values()) else None
            if image_embeddings is not None:
                image_prompts, level_sizes, pooled = self._image_inputs(image_embeddings)
            else:
                image_prompts, level_sizes, pooled = None, [], None
            state = self.interface(layout, image_prompts, level_sizes, pooled, tokens, self.heads.pixel_embed,
                                   deep_supervision=deep_supervision,
                                   pixel=image_embeddings.pixel if image_embeddings is not None else None,
                                   level_tokens=level_tokens, token_positions=token_positions)
        return TaskOutput(task=task, prototype=proto, image=image_embeddings, prompts=sets, state=state)

    def _image_inputs(self, image: ImageEmbeddings) -> tuple[list[Tensor], list[tuple[int, int]], list[Tensor]]:
        """What the interface reads of an image: per level the features with their level embedding,
        the level's size, and the pixel embeddings averaged onto it (for mask-guided attention)."""
        image_prompts = self.sampler.image_prompts(image)
        level_sizes = [tuple(level.shape[-2:]) for level in image.levels]
        pixel = image.pixel
        pooled = [F.avg_pool2d(pixel, pixel.shape[-1] // w).flatten(2) for _, w in level_sizes]
        return image_prompts, level_sizes, pooled

    def predict(self, output: TaskOutput) -> TaskOutput:
        """Apply the heads to the interface's final (and intermediate) query states."""
        with self._autograd():
            output.predictions = self._heads(output, output.state.queries)
            output.aux = [self._heads(output, q) for q in output.state.intermediate]
        return output

    def _heads(self, output: TaskOutput, queries: Tensor, with_masks: bool = True) -> Predictions:
        """``with_masks`` False: no stride-4 mask logits (a match read-out makes only its chosen
        proposals' masks, from the pixel embeddings)."""
        semantic, pixel, masks = {}, {}, {}
        for spec in output.prototype.queries:
            q = queries[:, output.state.layout.query_slices[spec.name]]
            if spec.pooled_from is not None:
                proposals = queries[:, output.state.layout.query_slices[spec.pooled_from]]
                semantic[spec.name] = self.heads.pooled_semantic_embed(q, proposals)
            elif "semantic" in spec.outputs:
                semantic[spec.name] = self.heads.semantic_embed(q)
            if "pixel" in spec.outputs and output.image is not None:
                pixel[spec.name] = self.heads.pixel_embed(q)
                if with_masks:
                    masks[spec.name] = self.heads.masks(pixel[spec.name], output.image.pixel)
        return Predictions(semantic, pixel, masks)

    # ----------------------------------------------------------------------------------- read-outs

    def readout(self, output: TaskOutput, **options: Any) -> Any:
        """The task's read-out (:func:`find_ros.model.readout.read`): list[GroundingResult] (match),
        list[SegmentationResult] (panoptic), RetrievalResult (similarity), or the TaskOutput itself."""
        if output.predictions is None:
            output = self.predict(output)
        if output.prototype.readout.kind == "match":
            options.setdefault("presence", self.presence)
        return readout.read(self.heads, output, semantic_blend=self.config.visual_match_blend,
                            decoder=self.config.decoder, **options)

    @staticmethod
    def compare(images: Tensor, queries: Tensor) -> RetrievalResult:
        """Cosine similarities of image vectors (I, D) to query vectors (M, D), e.g. from
        :meth:`embed_images` and :meth:`embed_captions` computed at different times."""
        return readout.compare(images, queries)

    # --------------------------------------------------------------------------------- convenience

    def ground(self, image: ImageEmbeddings, instruction: InstructionEmbeddings | ParsedInstruction | str,
               visuals: Sequence[np.ndarray | RegionRef] = ()) -> list[GroundingResult]:
        """Interleave grounding: one mask (original image size), score and box per entity, per image;
        each entity says which ``<k>`` it is (``visual_index``)."""
        if isinstance(instruction, (str, ParsedInstruction)):
            instruction = self.encode_instruction(instruction, visuals)
        return self.readout(self.run("interleave_grounding", image, interleave=instruction),
                            visual_indices=[e.visual_index for e in instruction.entities])

    @property
    def stacks_instructions(self) -> bool:
        """Whether :meth:`ground_many` stacks the instructions into one pass. Our decoders do; the
        authors' graph (``decoder_style`` "official") re-reads each instruction's point samples at every
        level, which the stack does not carry yet, so there ``ground_many`` grounds one at a time."""
        return not self.config.decoder.point_samples

    def batch_instructions(self, instructions: Sequence[InstructionEmbeddings]) -> InstructionBatch:
        """Instructions stacked for :meth:`ground_many`; build it once and reuse it on every frame
        while the set of instructions stays the same (it holds their padded tokens and masks)."""
        instructions = as_sequence(instructions, "instructions")
        if any(not isinstance(i, InstructionEmbeddings) for i in instructions):
            raise ValueError("ground_many takes InstructionEmbeddings from encode_instruction")
        if not self.stacks_instructions:
            raise ValueError(f"decoder_style {self.config.decoder_style!r} grounds instructions one at a time; "
                             "pass them to ground_many as a list")
        with self._autograd():
            return batch_instructions(get_prototype("interleave_grounding", self.config.decoder.prototype_set),
                                      "interleave", instructions,
                                      self.config.num_object_queries, self.config.num_global_queries,
                                      self.device, self.dtype)

    def ground_many(self, image: ImageEmbeddings,
                    instructions: Sequence[InstructionEmbeddings] | InstructionBatch) -> list[list[GroundingResult]]:
        """Interleave grounding of several instructions in one image, in one interface pass: per
        instruction what :meth:`ground` gives (a list with one GroundingResult per image). The
        instructions do not see each other; they are stacked along the batch
        (:mod:`find_ros.model.instruction_batch`), so results equal one-at-a-time ones to float
        rounding, and bit for bit when no padding is needed. ``image`` must hold one frame;
        ``instructions`` may be a :meth:`batch_instructions` made earlier."""
        if not isinstance(image, ImageEmbeddings):
            raise ValueError("image must come from FindModel.encode_image")
        if image.batch_size != 1:
            raise ValueError(f"ground_many grounds in one frame; got a batch of {image.batch_size} (use ground per frame)")
        if not self.stacks_instructions:
            items = instructions.instructions if isinstance(instructions, InstructionBatch) else \
                as_sequence(instructions, "instructions")
            return [self.ground(image, instruction) for instruction in items]
        batch = instructions if isinstance(instructions, InstructionBatch) else self.batch_instructions(instructions)
        if batch.size == 0:
            return []
        instructions = batch.instructions
        task = "interleave_grounding"
        proto = batch.layout.prototype
        with self._autograd():
            image_prompts, level_sizes, pooled = self._image_inputs(image)
            # The frame's inputs keep batch 1: the interface shares them across the rows.
            state = self.interface(batch.layout, image_prompts, level_sizes, pooled, batch.tokens, self.heads.pixel_embed)
            # No stack of mask logits (every row's every proposal at stride 4): the read-out makes
            # each row's chosen proposals' masks from their pixel embeddings.
            stacked = self._heads(TaskOutput(task, proto, image, {}, state), state.queries, with_masks=False)
        results = []
        for row, (instruction, token_set, layout) in enumerate(zip(instructions, batch.token_sets, batch.layouts)):
            sizes = {name: s.stop - s.start for name, s in layout.query_slices.items()}

            def own(outputs: dict[str, Tensor]) -> dict[str, Tensor]:
                return {name: t[row: row + 1, : sizes[name]] for name, t in outputs.items()}

            queries = state.queries[row: row + 1, : layout.num_queries]
            # Semantic embeddings per row: a linear layer over a handful of rows (one per entity)
            # rounds differently from the same rows inside a larger matrix, so they are computed at
            # the instruction's own shape; the pixel outputs come from the stack (32 rows per
            # instruction whatever its length, which keeps them bit-identical).
            with self._autograd():
                semantic = {name: self.heads.semantic_embed(queries[:, layout.query_slices[name]])
                            for name in stacked.semantic}
            output = TaskOutput(task, proto, image, {"interleave": token_set},
                                InterfaceState(layout, queries, state.tokens[row: row + 1, : token_set.num_tokens], []),
                                Predictions(semantic, own(stacked.pixel), {}))
            results.append(self.readout(output, visual_indices=[e.visual_index for e in instruction.entities]))
        return results

    def ground_phrases(self, image: ImageEmbeddings, phrases: Sequence[str]) -> list[GroundingResult]:
        """Grounded segmentation: one mask per referring phrase."""
        return self.readout(self.run("grounded_segmentation", image, text=phrases))

    def segment_interactive(self, image: ImageEmbeddings, prompts: Sequence[SpatialPrompt]) -> list[GroundingResult]:
        """Interactive segmentation: one mask per prompt group (points, boxes, scribbles, masks)."""
        return self.readout(self.run("interactive_segmentation", image, spatial=prompts))

    def segment(self, image: ImageEmbeddings, classes: Sequence[str | VisualClass] | TokenSet, *, stuff: Sequence[str] = (),
                settings: SegmentationSettings | None = None, **options: Any) -> list[SegmentationResult]:
        """Generic segmentation over ``classes`` (``stuff`` names the amorphous ones, merged per class).
        ``classes`` may also be a TokenSet from :meth:`encode_classes`, e.g. long descriptions.
        ``settings`` default to the model config's; ``options`` (``object_threshold=0.5``, ...)
        override their fields."""
        settings = dataclasses.replace(settings or self.config.segmentation_settings(), **options)  # checked before the run
        if self.config.decoder.no_object == "background_class" and not isinstance(classes, TokenSet):
            classes = with_background(as_sequence(classes, "classes"))
        return self.readout(self.run("generic_segmentation", image, **{"class": classes}), stuff=stuff,
                            settings=settings)

    def embed_images(self, image: ImageEmbeddings, task: str = "interleave_retrieval") -> Tensor:
        """Global image embeddings (B, D), unit length. The image query sees only the image, so
        both retrieval tasks give the same vector; ``task`` picks whose prototype runs."""
        proto = get_prototype(task, self.config.decoder.prototype_set)
        empty = TokenSet.empty(self.config.hidden_dim, self.device, self.dtype)
        out = self.run(task, image, **{p.name: empty for p in proto.token_prompts if p.samples_of is None})
        return F.normalize(out.predictions.semantic[proto.readout.proposals][:, 0].float(), dim=-1)

    def embed_captions(self, captions: Sequence[str]) -> Tensor:
        """Caption embeddings (M, D), unit length, comparable with :meth:`embed_images`."""
        out = self.run("image_text_retrieval", None, caption=captions)
        return F.normalize(out.predictions.semantic["caption"][0].float(), dim=-1)

    def embed_instructions(self, instructions: Sequence[InstructionEmbeddings]) -> Tensor:
        """Interleaved-instruction embeddings (M, D), unit length, for interleave retrieval."""
        out = self.run("interleave_retrieval", None, interleave=instructions)
        return F.normalize(out.predictions.semantic["interleave"][0].float(), dim=-1)

    def retrieve(self, image: ImageEmbeddings, queries: Sequence[str] | Sequence[InstructionEmbeddings]) -> RetrievalResult:
        """Similarity of every image to every query: captions (image–text retrieval) or
        InstructionEmbeddings (interleave retrieval)."""
        queries = as_sequence(queries, "queries")
        if queries and all(isinstance(q, str) for q in queries):
            return self.compare(self.embed_images(image, "image_text_retrieval"), self.embed_captions(queries))
        if queries and all(isinstance(q, InstructionEmbeddings) for q in queries):
            return self.compare(self.embed_images(image, "interleave_retrieval"), self.embed_instructions(queries))
        raise ValueError("queries must be a non-empty list of captions or of InstructionEmbeddings")


BACKGROUND = "background"


def with_background(classes: list) -> list:
    """The class list with the no-object class "background" last (the authors' generic
    segmentation), added unless the caller put it there."""
    return classes if classes and classes[-1] == BACKGROUND else [*classes, BACKGROUND]


def strip_class_suffixes(name: str, suffixes: Sequence[str]) -> str:
    """A class name without the given suffixes (COCO panoptic's "wall-other-merged" reads "wall")."""
    for suffix in suffixes:
        name = name.replace(suffix, "")
    return name
