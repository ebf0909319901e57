"""Decoder styles: which numerics the interface, heads and read-outs use.

A FIND model names its style in ``FindConfig.decoder_style``. Our own models use ``"find_ros"``
(what the first ones were trained with) or ``"relational"``: content attention carries the image
features' positions into the queries' states (values, not only keys), and task queries see the
proposals they choose among (prototype set "proposal_aware"), so "left of", "rightmost" and
look-alikes told apart by place can be represented. A converted release of the authors' FIND (``find-ros import-find``)
uses ``"official"``: the same modules, with each setting below switched to the behaviour the
released decoder has (facts from the reference fixtures' README, ``find-official/README.md`` §3,
§5 and §6). Tasks stay data: the style also picks which prototype set runs
(:mod:`find_ros.model.prototypes`).
"""

from __future__ import annotations

from dataclasses import dataclass

DECODER_STYLES = ("find_ros", "official", "relational")


@dataclass(frozen=True)
class DecoderSettings:
    # The registered prototype set the tasks are looked up in.
    prototype_set: str = "find_ros"
    # Sine positions of the level features: "centred" puts row k at (k + 0.5) / H; "one_based"
    # at (k + 1) / (H + 1e-6), the DETR embedding the authors use in decoder and pixel decoder.
    sine_positions: str = "centred"
    # Content attention adds the level features' sine positions to the values as well as the keys,
    # so what a query gathers says where it came from (keys alone only steer where it looks).
    value_positions: bool = False
    # How the previous layer's masks restrict a proposal's attention to a level: "pool" averages the
    # stride-4 pixel embeddings onto the level; "bilinear" resizes the stride-4 mask logits to the
    # level (align_corners=False), as the authors do.
    attention_mask_resize: str = "pool"
    # Positional part of token prompts in attention: "zero", or "initial": the token's value when
    # it entered the interface (the authors keep a copy of each token set as its position).
    token_positions: str = "zero"
    # What a row of attention with nothing to attend gives: "zero", or "bias": the output
    # projection's bias (the authors' softmax over no key is all zeros, then out_proj adds its bias).
    empty_rows: str = "zero"
    # Generic segmentation's no-object column: "void_embedding" (a learned vector), or
    # "background_class": the class prompt "background", always the last class of the authors' list.
    no_object: str = "void_embedding"
    # Class logits exp(logit_scale) * cos: clamped at a scale of 100 (CLIP), or not (the authors'
    # class logits; their grounding logits are clamped).
    clamp_class_logits: bool = True
    # Suffixes removed from class names before the class template (COCO panoptic's names).
    class_suffixes: tuple[str, ...] = ()
    # Generic segmentation's instances: of every class, or only of thing classes (Mask2Former's
    # instance inference with panoptic metadata).
    instances_of_things_only: bool = False
    # Panoptic merge: the area a proposal must keep (overlap threshold) is what it owns where its
    # mask is on ("owned_and_on"), or all it owns ("owned", Mask2Former's rule).
    panoptic_overlap_of: str = "owned_and_on"
    # Interactive prompts and visual entities as the authors' point samples (up to 512 per call,
    # re-read at every level through mask_sptial_embed), instead of one pooled token per level.
    point_samples: bool = False
    # The last resize of mask logits to the original image size: "bilinear", or
    # "bicubic_antialias" (the authors' evaluation).
    final_mask_resize: str = "bilinear"


def decoder_settings(style: str) -> DecoderSettings:
    if style == "find_ros":
        return DecoderSettings()
    if style == "official":
        return DecoderSettings(
            prototype_set="official", sine_positions="one_based", attention_mask_resize="bilinear",
            token_positions="initial", empty_rows="bias", no_object="background_class", clamp_class_logits=False,
            class_suffixes=("-other", "-merged", "-stuff"), instances_of_things_only=True, panoptic_overlap_of="owned", point_samples=True,
            final_mask_resize="bicubic_antialias",
        )
    if style == "relational":
        return DecoderSettings(prototype_set="proposal_aware", value_positions=True)
    raise ValueError(f"decoder style {style!r} is not one of {', '.join(DECODER_STYLES)}")
