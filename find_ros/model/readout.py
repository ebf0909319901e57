"""Every task's read-out: from the heads' predictions to masks, scores and similarities.

The prototype's ``readout`` says which kind (:class:`find_ros.model.prototypes.ReadoutSpec`):

* ``match`` (paper eq. 10-12): each target (entity, phrase, clicked object) takes the proposal it
  matches best; visual entities and clicks match in pixel space against their region's pixel
  embedding, as the authors do, text by semantic similarity. :func:`match_logits` is that score;
  training's grounding loss uses the same function, so it trains what inference reads.
* ``panoptic``: Mask2Former's panoptic merge, semantic and instance inference over class logits
  (:func:`class_logits`, shared with training's generic-segmentation loss).
* ``similarity``: cosine similarity matrices for retrieval.

Read-outs return the plain values of :mod:`find_ros.model.results`, at each image's original size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from find_ros.model.decoder_style import DecoderSettings
from find_ros.model.embeddings import ImageEmbeddings, TokenSet
from find_ros.model.heads import Heads, Predictions
from find_ros.model.presence import FALLBACK, PresenceSettings, PresenceSignals
from find_ros.model.results import (
    EntityMask,
    GroundingResult,
    Instance,
    RetrievalResult,
    Segment,
    SegmentationResult,
    SegmentationSettings,
    mask_box,
)

if TYPE_CHECKING:
    from find_ros.model.find import TaskOutput

def upsample_masks(mask_logits: Tensor, image: ImageEmbeddings, index: int, final: str = "bilinear") -> Tensor:
    """Mask logits (N, H/4, W/4) of image ``index`` → (N, H, W) at its original size (float32):
    bilinear to the network input, cropped to the image, then ``final`` (DecoderSettings.final_mask_resize)
    to the original size: "bilinear" or "bicubic_antialias"."""
    if mask_logits.shape[0] == 0:
        h, w = image.image_sizes[index]
        return mask_logits.new_zeros(0, h, w, dtype=torch.float32)
    rh, rw = image.resized_sizes[index]
    x = F.interpolate(mask_logits[None].float(), size=image.input_size, mode="bilinear", align_corners=False)
    x = x[..., :rh, :rw]
    if final == "bicubic_antialias":
        return F.interpolate(x, size=image.image_sizes[index], mode="bicubic", align_corners=False, antialias=True)[0]
    return F.interpolate(x, size=image.image_sizes[index], mode="bilinear", align_corners=False)[0]


# ------------------------------------------------------------------------------------------- match


def match_targets(output: TaskOutput) -> TokenSet | None:
    """The prompt whose groups the read-out's targets stand for (None: targets are numbered)."""
    grouped_by = output.prototype.query(output.prototype.readout.targets).per_group_of
    return output.prompts[grouped_by] if grouped_by else None


def match_logits(heads: Heads, output: TaskOutput, predictions: Predictions, index: int = 0,
                 semantic_blend: float = 0.0) -> Tensor:
    """(G, P) logits of each read-out target of image ``index`` against every proposal: scaled
    cosine of semantic embeddings, or, for targets that are image regions, of the region's pixel
    embedding against the proposals' pixel embeddings, mixed with ``semantic_blend`` of the semantic
    logits (0: pixel only, as trained). ``predictions`` may be any layer's (deep supervision)."""
    spec = output.prototype.readout
    proposal_semantic = predictions.semantic[spec.proposals][index]
    targets = match_targets(output)
    if spec.score == "dot":
        return dot_logits(predictions, spec.proposals, spec.targets, index, targets)
    logits = heads.similarity(predictions.semantic[spec.targets][index], proposal_semantic)
    if targets is None or targets.pixel_refs is None or targets.has_pixel_ref is None \
            or not bool(targets.has_pixel_ref.any()):
        return logits
    refs = targets.pixel_refs[index if targets.pixel_refs.shape[0] > 1 else 0]
    pixel_logits = heads.similarity(refs, predictions.pixel[spec.proposals][index])
    if semantic_blend:
        pixel_logits = (1.0 - semantic_blend) * pixel_logits + semantic_blend * logits
    return torch.where(targets.has_pixel_ref[:, None], pixel_logits, logits)


def dot_logits(predictions: Predictions, proposals: str, targets_name: str, index: int,
               targets: TokenSet | None) -> Tensor:
    """(G, P) raw dot products (the authors' interleave and interactive read-outs): a visual
    target's pixel embedding with the proposals' pixel embeddings, a text target's semantic
    embedding with the proposals' semantic embeddings."""
    semantic = predictions.semantic[targets_name][index] @ predictions.semantic[proposals][index].T
    visual = targets.has_pixel_ref if targets is not None and targets.has_pixel_ref is not None else None
    if visual is None or not bool(visual.any()):
        return semantic
    pixel = predictions.pixel[targets_name][index] @ predictions.pixel[proposals][index].T
    return torch.where(visual[:, None], pixel, semantic)


def covered_cells(mask_logits: Tensor, image: ImageEmbeddings, index: int) -> Tensor:
    """Mask logits (N, H/4, W/4) of image ``index`` cropped to the stride-4 cells its pixels cover
    (the rest of the network input is padding)."""
    rh, rw = image.resized_sizes[index]
    return mask_logits[:, : -(-rh // 4), : -(-rw // 4)]


def resize_chosen(mask_logits: Tensor, image: ImageEmbeddings, index: int, how: str, final: str) -> Tensor:
    """Chosen mask logits (N, H/4, W/4) → (N, H, W) by a read-out's ``mask_resize``."""
    size = image.image_sizes[index]
    if how == "direct_bicubic_antialias":
        x = covered_cells(mask_logits, image, index)[None].float()
        return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)[0]
    if how == "bicubic":
        rh, rw = image.resized_sizes[index]
        x = F.interpolate(mask_logits[None].float(), size=image.input_size, mode="bicubic", align_corners=False)
        return F.interpolate(x[..., :rh, :rw], size=size, mode="bicubic", align_corners=False)[0]
    return upsample_masks(mask_logits, image, index, final)


def read_match(heads: Heads, output: TaskOutput, semantic_blend: float = 0.0,
               visual_indices: Sequence[int | None] | None = None,
               presence: PresenceSettings = FALLBACK, decoder: DecoderSettings | None = None) -> list[GroundingResult]:
    """Per image, per target: the argmax proposal's mask (logit > 0), its softmax score and logit,
    and whether the target is in view at all (``presence``, :func:`judge_presence`).
    ``visual_indices`` (per target: k of an instruction's ``<k>``, None for text) label the entities."""
    spec = output.prototype.readout
    preds = output.predictions
    targets = match_targets(output)
    count = preds.semantic[spec.targets].shape[1]
    labels = targets.labels if targets is not None else tuple(str(i) for i in range(count))
    has_ref = targets.has_pixel_ref if targets is not None else None
    if visual_indices is not None and len(visual_indices) != len(labels):
        raise ValueError(f"{len(visual_indices)} visual indices for {len(labels)} targets")
    results = []
    for b in range(output.image.batch_size):
        logits = match_logits(heads, output, preds, b, semantic_blend).float()
        probs = logits.softmax(-1)
        chosen = logits.argmax(-1)
        # Only the chosen proposals' mask logits, from their pixel embeddings: the same computation
        # whether the stack of every proposal's masks was made or not (ground vs ground_many).
        chosen_logits = heads.masks(preds.pixel[spec.proposals][b: b + 1, chosen], output.image.pixel[b: b + 1])[0]
        mask_logits = resize_chosen(chosen_logits, output.image, b, spec.mask_resize,
                                    (decoder or DecoderSettings()).final_mask_resize)
        masks = mask_logits > 0
        cells = covered_cells(chosen_logits, output.image, b).float()
        void = void_logits(heads, preds.semantic[spec.proposals][b][chosen])
        target_void = void_logits(heads, preds.semantic[spec.targets][b])
        host_masks = masks.cpu().numpy()
        signals = presence_signals(logits, chosen, cells, host_masks, void, target_void)
        # Plain values for every target at once: per-element reads of small tensors add up.
        scores = probs.gather(-1, chosen[:, None])[:, 0].tolist()
        proposals = chosen.tolist()
        visual = has_ref.tolist() if has_ref is not None else [False] * len(labels)
        entities = []
        for g in range(len(labels)):
            entity = EntityMask(label=labels[g], score=scores[g], mask=host_masks[g], proposal=proposals[g],
                                is_visual=bool(visual[g]), match=signals[g].match,
                                visual_index=visual_indices[g] if visual_indices is not None else None)
            entity.signals = signals[g]
            judge_presence(entity, presence)
            entities.append(entity)
        results.append(GroundingResult(image_size=output.image.image_sizes[b], entities=entities))
    return results


def void_logits(heads: Heads, proposals: Tensor) -> Tensor:
    """(N,) logit of each proposal's semantic embedding (N, D) for "no object" (Mask2Former's void class)."""
    return heads.similarity(proposals, heads.void_embedding[None].to(proposals.dtype))[:, 0].float()


def presence_signals(logits: Tensor, chosen: Tensor, cells: Tensor, masks: np.ndarray, void: Tensor,
                     target_void: Tensor) -> list[PresenceSignals]:
    """The presence signals of G targets of one image, computed together (one small op each for
    all targets, not a dozen per target): their logits (G, P) against every proposal, the chosen
    proposals (G,), the chosen masks' logits at the model's stride 4 (G, h, w: :func:`covered_cells`),
    the masks at the original size (G, H, W, on the host), the chosen proposals' "no object"
    logits (G,) and the targets' own (G,).

    The mask's probability is read at stride 4, not from the full-size logits: at 640x480 gathering
    a target's mask pixels cost about 0.5 ms, there 30 times as many values as cells. Bilinear
    resizing only averages cells, so a non-empty mask has a positive cell."""
    rows = torch.arange(logits.shape[0], device=logits.device)
    match = logits[rows, chosen]
    count = logits.shape[1] - 1  # the other proposals
    others = logits.clone()
    others[rows, chosen] = float("-inf")
    if count:
        runner_up = match - others.max(-1).values
        others_lse = match - torch.logsumexp(others, -1)
        mean = match - (logits.sum(-1) - match) / count  # the others' mean
    else:  # a lone proposal has no rival: its margins count as none
        runner_up = others_lse = mean = torch.zeros_like(match)
    # Counted on the host copy the read-out publishes anyway: torch's count_nonzero over a dim, like
    # sum(), first copies the masks to int64 (6 ms for 11 masks of 640x480), and NumPy counts a
    # whole 640x480 mask in a quarter of the time torch takes.
    areas = [int(np.count_nonzero(mask)) for mask in masks]
    positive = cells.flatten(1) > 0
    hits = positive.sum(-1)
    probability = torch.where(positive, cells.flatten(1).sigmoid(), 0.0).sum(-1) / hits.clamp(min=1)
    pixels = max(masks[0].size, 1) if len(masks) else 1
    columns = zip(match.tolist(), (match - void).tolist(), areas, runner_up.tolist(), others_lse.tolist(),
                  mean.tolist(), probability.tolist(), target_void.tolist())
    return [PresenceSignals(match=m, void_margin=v, mask_fraction=a / pixels, runner_up_margin=r, others_margin=o,
                            mean_margin=n, mask_probability=q if a else 0.0, target_void=t)
            for m, v, a, r, o, n, q, t in columns]


def judge_presence(entity: EntityMask, presence: PresenceSettings) -> None:
    """The one presence hook of every match read-out: ``confidence`` and ``found`` from ``signals``."""
    if entity.signals is None:
        raise ValueError(f"entity {entity.label!r}: no presence signals to judge")
    entity.confidence = presence.confidence(entity.signals, entity.is_visual)
    entity.found = presence.found(entity.confidence)


# ---------------------------------------------------------------------------------------- panoptic


def class_logits(heads: Heads, proposals: Tensor, classes: Tensor, decoder: DecoderSettings | None = None) -> Tensor:
    """(Q, C+1) logits of proposals' semantic embeddings (Q, D) against the classes (C, D) and
    "no object", the extra class of Mask2Former's classification: the learned void embedding, or
    (``decoder.no_object == "background_class"``) the last of ``classes`` itself."""
    decoder = decoder or DecoderSettings()
    if decoder.no_object == "background_class":
        return heads.similarity(proposals, classes, clamp=decoder.clamp_class_logits)
    return heads.similarity(proposals, torch.cat([classes, heads.void_embedding[None].to(classes.dtype)]),
                            clamp=decoder.clamp_class_logits)


def panoptic_merge(mask_logits: Tensor, class_logits: Tensor, labels: Sequence[str], thing: Sequence[bool],
                   object_threshold: float, overlap_threshold: float,
                   overlap_of: str = "owned_and_on") -> tuple[np.ndarray, list[Segment]]:
    """Mask2Former's panoptic inference for one image. ``mask_logits`` (Q, H, W) at image size,
    ``class_logits`` (Q, C+1) with the last column "no object". ``overlap_of``
    (DecoderSettings.panoptic_overlap_of): the area compared with a proposal's own mask is the
    part it owns where its mask is on ("owned_and_on"), or all it owns ("owned", Mask2Former's)."""
    probs = class_logits.float().softmax(-1)
    scores, classes = probs.max(-1)
    num_classes = class_logits.shape[-1] - 1
    keep = (classes != num_classes) & (scores > object_threshold)
    height, width = mask_logits.shape[-2:]
    panoptic = np.zeros((height, width), dtype=np.int32)
    segments: list[Segment] = []
    if not bool(keep.any()):
        return panoptic, segments
    masks = mask_logits[keep].float().sigmoid()
    scores, classes = scores[keep], classes[keep]
    owner = (scores[:, None, None] * masks).argmax(0)
    stuff_ids: dict[int, int] = {}
    for k in range(masks.shape[0]):
        cls = int(classes[k])
        on = masks[k] >= 0.5
        original = int(on.sum())
        region = (owner == k) & on
        area = int(region.sum())
        owned = int((owner == k).sum()) if overlap_of == "owned" else area
        if original == 0 or area == 0 or owned / original < overlap_threshold:
            continue
        region_np = region.cpu().numpy()
        if not thing[cls] and cls in stuff_ids:  # one segment per stuff class
            seg = next(s for s in segments if s.id == stuff_ids[cls])
            panoptic[region_np] = seg.id
            seg.area = int((panoptic == seg.id).sum())
            seg.box = mask_box(panoptic == seg.id)
            continue
        seg_id = len(segments) + 1
        panoptic[region_np] = seg_id
        segments.append(Segment(seg_id, labels[cls], cls, float(scores[k]), area, mask_box(region_np), bool(thing[cls])))
        if not thing[cls]:
            stuff_ids[cls] = seg_id
    return panoptic, segments


def semantic_scores(mask_logits: Tensor, class_logits: Tensor) -> Tensor:
    """(C, H, W): Σ_q p(class | q)·sigmoid(mask_q), the "no object" column left out (Mask2Former
    semantic inference)."""
    probs = class_logits.float().softmax(-1)[:, :-1]
    return torch.einsum("qc,qhw->chw", probs, mask_logits.float().sigmoid())


def semantic_map(mask_logits: Tensor, class_logits: Tensor) -> np.ndarray:
    """(H, W) class index: the argmax of :func:`semantic_scores`."""
    scores = semantic_scores(mask_logits, class_logits)
    return scores.argmax(0).to(torch.int32).cpu().numpy()


def instances(mask_logits: Tensor, class_logits: Tensor, labels: Sequence[str], top_k: int,
              thing: Sequence[bool] | None = None) -> list[Instance]:
    """Top-k (query, class) pairs scored by class probability × mean mask probability inside the
    mask; with ``thing``, pairs of stuff classes are dropped after the top-k (Mask2Former)."""
    probs = class_logits.float().softmax(-1)[:, :-1]
    num_classes = probs.shape[1]
    flat = probs.flatten()
    k = min(top_k, flat.numel())
    top, order = flat.topk(k)
    out: list[Instance] = []
    for score, idx in zip(top.tolist(), order.tolist()):
        q, cls = divmod(idx, num_classes)
        if thing is not None and not thing[cls]:
            continue
        prob = mask_logits[q].float().sigmoid()
        on = prob >= 0.5
        mask_score = float((prob * on).sum() / on.sum().clamp_min(1))
        out.append(Instance(labels[cls], cls, score * mask_score, on.cpu().numpy()))
    out.sort(key=lambda i: -i.score)
    return out


def read_panoptic(heads: Heads, output: TaskOutput, *, stuff: Sequence[str] = (),
                  settings: SegmentationSettings | None = None, decoder: DecoderSettings | None = None,
                  **options: Any) -> list[SegmentationResult]:
    """Generic segmentation of every image over the class prompt (``stuff``: classes merged per
    class); ``options`` are fields of :class:`SegmentationSettings` that override ``settings``."""
    settings = dataclasses.replace(settings or SegmentationSettings(), **options)
    modes = settings.modes
    spec = output.prototype.readout
    preds = output.predictions
    classes = match_targets(output)
    if classes is None:
        raise ValueError("a panoptic read-out needs class queries declared per_group_of a class prompt")
    decoder = decoder or DecoderSettings()
    # With a background class, the class prompt's last group is "no object", not a label.
    labels = classes.labels[:-1] if decoder.no_object == "background_class" else classes.labels
    thing = [label not in set(stuff) for label in labels]
    results = []
    for b in range(output.image.batch_size):
        logits = class_logits(heads, preds.semantic[spec.proposals][b], preds.semantic[spec.targets][b], decoder).float()
        masks = upsample_masks(preds.masks[spec.proposals][b], output.image, b, decoder.final_mask_resize)
        panoptic, segments = (panoptic_merge(masks, logits, labels, thing, settings.object_threshold,
                                             settings.overlap_threshold, decoder.panoptic_overlap_of)
                              if "panoptic" in modes else (None, []))
        results.append(SegmentationResult(
            image_size=output.image.image_sizes[b], labels=labels, panoptic=panoptic, segments=segments,
            semantic=semantic_map(masks, logits) if "semantic" in modes else None,
            instances=instances(masks, logits, labels, settings.top_k,
                                thing if decoder.instances_of_things_only else None) if "instance" in modes else [],
        ))
    return results


# -------------------------------------------------------------------------------------- similarity


def cosine_matrix(a: Tensor, b: Tensor) -> Tensor:
    return F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).T


def compare(images: Tensor, queries: Tensor) -> RetrievalResult:
    """Cosine similarities of image vectors (I, D) to query vectors (M, D)."""
    return RetrievalResult(similarity=cosine_matrix(images, queries).cpu().numpy(),
                           image_embeddings=F.normalize(images.float(), dim=-1),
                           query_embeddings=F.normalize(queries.float(), dim=-1))


def read_similarity(output: TaskOutput) -> RetrievalResult:
    spec = output.prototype.readout
    return compare(output.predictions.semantic[spec.proposals][:, 0], output.predictions.semantic[spec.targets][0])


# ------------------------------------------------------------------------------------------- entry


def read(heads: Heads, output: TaskOutput, *, semantic_blend: float = 0.0, decoder: DecoderSettings | None = None,
         **options: Any) -> Any:
    """The task's read-out of a predicted ``output``: list[GroundingResult] (match, ``options`` as
    :func:`read_match`), list[SegmentationResult] (panoptic, ``options`` as :func:`read_panoptic`),
    RetrievalResult (similarity), or the TaskOutput itself (none). ``semantic_blend`` applies to
    match read-outs."""
    kind = output.prototype.readout.kind
    with torch.no_grad():
        if kind == "match":
            return read_match(heads, output, semantic_blend, decoder=decoder, **options)
        if kind == "panoptic":
            return read_panoptic(heads, output, decoder=decoder, **options)
        if kind == "similarity":
            return read_similarity(output)
    return output
