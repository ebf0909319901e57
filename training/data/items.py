"""Training items: one image with the targets of every task drawn for it, and the order in which
images are visited.

An item's random choices (which referring expressions, which prompts, which entities turn visual)
come from a generator seeded by (seed, epoch, index) alone, so an item is the same whichever rank,
worker or resumed run builds it; the visiting order is a seeded permutation per epoch, split
across ranks by position. Together they make a resumed run see exactly what an uninterrupted one
would have seen from that step on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from find_ros.image_io import crop_around
from find_ros.model import SpatialPrompt
from find_ros.model.results import mask_box
from training.data.dataset import FindDataset, Sample
from training.data.interleave import InterleavePlan, plan_instruction, visual_flags
from training.data.prompts import KINDS, prompts_for_object
from training.data_engine.schema import EntityCaption


@dataclass(frozen=True)
class ItemConfig:
    max_grounded: int = 4  # referring expressions per image and step
    grounded_from_entities: bool = True  # FIND-Bench phrases are referring expressions too
    # FIND-Bench phrases naming stuff ("the floor") as grounding targets too. Grounded evaluation
    # asks only for things (the refs), so with False every grounded target is a thing to pick out.
    grounded_stuff: bool = True
    max_interactive: int = 4  # objects prompted per image and step
    interactive_kinds: tuple[str, ...] = KINDS
    negative_prob: float = 0.2
    visual_prob: float = 0.5  # paper: each entity turns visual with probability 0.5
    reference_prob: float = 0.0  # a visual entity shows its reference (another image) instead
    # A visual entity comes as an RGB crop around its segment instead of the segment itself, the
    # way a robot user gives one; its box grows by a random factor in ``crop_context``.
    crop_prob: float = 0.0
    crop_context: tuple[float, float] = (1.0, 1.8)
    # The instruction is a single entity of the caption ("<0>" or "[a red cone]") instead of the
    # whole caption: what an operator sends to find one thing.
    single_entity_prob: float = 0.0
    # A full item adds a (crop around one of its phrases' segments, that phrase) pair to the
    # image-text contrast: image-level embeddings of single things, which is what a 3D feature
    # field learns from crops and a text query must then match.
    phrase_crop_prob: float = 0.0


@dataclass
class Region:
    """A picture for a visual entity: ``mask`` of image ``image_id`` (``rgb`` when it is not the
    item's own image), or ``crop``, an RGB crop around that segment, when it is given as one."""

    image_id: int
    mask: np.ndarray
    rgb: np.ndarray | None = None
    crop: np.ndarray | None = None


@dataclass
class InterleaveTarget:
    plan: InterleavePlan
    regions: list[Region]  # one per <k>
    masks: list[np.ndarray | None]  # per parsed entity; None: not scored (whole-sentence entity)


@dataclass
class TrainItem:
    index: int
    image_id: int
    rgb: np.ndarray
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # category index per segment
    masks: np.ndarray | None = None  # (N, H, W) bool panoptic segments (crowd excluded)
    grounded: list[tuple[str, np.ndarray]] = field(default_factory=list)
    interactive: list[tuple[list[SpatialPrompt], np.ndarray]] = field(default_factory=list)
    caption: str | None = None
    interleave: InterleaveTarget | None = None
    phrase_crops: list[tuple[np.ndarray, str]] = field(default_factory=list)  # (RGB crop, its phrase)


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, index])


class TrainItems(torch.utils.data.Dataset):
    """Map-style dataset over ``(epoch, index)`` keys (see :class:`StepBatches`)."""

    def __init__(self, data: FindDataset, cfg: ItemConfig, seed: int) -> None:
        self.data = data
        self.cfg = cfg
        self.seed = seed

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key: tuple[int, int, bool]) -> TrainItem:
        epoch, index, full = key
        return self.build(index, item_rng(self.seed, epoch, index), full)

    def build(self, index: int, rng: np.random.Generator, full: bool = True) -> TrainItem:
        """``full=False``: an item for the retrieval tasks only (caption and instruction, no mask
        targets), which extra images of a larger retrieval batch need."""
        data, cfg = self.data, self.cfg
        sample = data.samples[index]
        item = TrainItem(index=index, image_id=sample.image_id, rgb=data.image(sample))
        if not full:
            if sample.captions:
                item.caption = sample.captions[int(rng.integers(len(sample.captions)))]
            if sample.entities:
                item.interleave = self._interleave(sample, None, item.rgb, rng, targets=False)
            return item
        panoptic = data.panoptic_ids(sample) if sample.panoptic_file else None
        if panoptic is not None:
            segs = [s for s in sample.segments if not s.iscrowd]
            masks = np.stack([panoptic == s.id for s in segs]) if segs else np.zeros((0, *panoptic.shape), bool)
            keep = masks.reshape(len(segs), -1).any(1)
            item.masks = masks[keep]
            item.labels = np.array([data.categories.index[s.category_id] for s, k in zip(segs, keep) if k], np.int64)
        item.grounded = self._grounded(sample, panoptic, rng)
        item.interactive = self._interactive(item, rng)
        if sample.captions:
            item.caption = sample.captions[int(rng.integers(len(sample.captions)))]
        if sample.entities:
            item.interleave = self._interleave(sample, panoptic, item.rgb, rng)
            if rng.random() < self.cfg.phrase_crop_prob:
                item.phrase_crops = [self._phrase_crop(sample, panoptic, item.rgb, rng)]
        return item

    def _phrase_crop(self, sample: Sample, panoptic: np.ndarray | None, rgb: np.ndarray,
                     rng: np.random.Generator) -> tuple[np.ndarray, str]:
        phrases = [p for c in sample.entities for p in c.phrases]
        phrase = phrases[int(rng.integers(len(phrases)))]
        crop = self._crop(rgb, self.data.object_mask(sample, phrase.annotation_id, panoptic), rng)
        return (rgb if crop is None else crop), phrase.phrase

    def _crop(self, rgb: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
        """A crop around ``mask``, its box grown by a random factor in ``crop_context``; None when
        the mask is empty."""
        box = mask_box(mask)
        return None if box is None else crop_around(rgb, box, float(rng.uniform(*self.cfg.crop_context)), 4)

    def _grounded(self, sample: Sample, panoptic: np.ndarray | None, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
        pool: list[tuple[list[str], int]] = [(list(r.sentences), r.ann_id) for r in sample.refs]
        if self.cfg.grounded_from_entities:
            things = None if self.cfg.grounded_stuff else {seg.id for seg in sample.segments if seg.isthing}
            pool += [([p.phrase], p.annotation_id) for c in sample.entities for p in c.phrases
                     if things is None or p.annotation_id in things]
        if not pool:
            return []
        # One expression per object: two expressions for the same object would compete for one proposal.
        by_object: dict[int, list[str]] = {}
        for sentences, obj in pool:
            by_object.setdefault(obj, []).extend(sentences)
        objects = sorted(by_object)
        chosen = rng.permutation(len(objects))[: self.cfg.max_grounded]
        out = []
        for k in sorted(chosen.tolist()):
            texts = by_object[objects[k]]
            text = texts[int(rng.integers(len(texts)))]
            out.append((text, self.data.object_mask(sample, objects[k], panoptic)))
        return out

    def _interactive(self, item: TrainItem, rng: np.random.Generator) -> list[tuple[list[SpatialPrompt], np.ndarray]]:
        if item.masks is None or not len(item.masks):
            return []
        chosen = rng.permutation(len(item.masks))[: self.cfg.max_interactive]
        return [(prompts_for_object(item.masks[k], group, rng, self.cfg.interactive_kinds, self.cfg.negative_prob),
                 item.masks[k]) for group, k in enumerate(sorted(chosen.tolist()))]

    def _interleave(self, sample: Sample, panoptic: np.ndarray | None, rgb: np.ndarray, rng: np.random.Generator,
                    targets: bool = True) -> InterleaveTarget:
        caption = sample.entities[int(rng.integers(len(sample.entities)))]
        if caption.phrases and rng.random() < self.cfg.single_entity_prob:
            caption = single_entity(caption, int(rng.integers(len(caption.phrases))))
        n = len(caption.phrases)
        visual = visual_flags(n, self.cfg.visual_prob, rng)
        use_ref = [bool(v and p.reference is not None and rng.random() < self.cfg.reference_prob)
                   for v, p in zip(visual, caption.phrases)]
        plan = plan_instruction(caption, visual, use_ref)
        regions = [self.region(v.image_id, v.segment_id, sample, panoptic) for v in plan.visuals]
        for r in regions:
            if rng.random() < self.cfg.crop_prob:
                r.crop = self._crop(rgb if r.rgb is None else r.rgb, r.mask, rng)
                if r.crop is not None:
                    r.rgb = None  # a crop needs no second image encoded
        if targets:
            masks = [None if t is None else self.data.object_mask(sample, t, panoptic) for t in plan.targets]
        else:
            masks = [None] * len(plan.targets)
        return InterleaveTarget(plan, regions, masks)

    def region(self, image_id: int, segment_id: int, own: Sample, own_panoptic: np.ndarray | None) -> Region:
        if image_id == own.image_id:
            return Region(image_id, self.data.object_mask(own, segment_id, own_panoptic))
        other = self.data.samples[self.data.by_id[image_id]]
        return Region(image_id, self.data.object_mask(other, segment_id), self.data.image(other))


def single_entity(caption: EntityCaption, k: int) -> EntityCaption:
    """Caption ``caption`` cut down to its phrase ``k`` alone."""
    phrase = caption.phrases[k]
    alone = replace(phrase, start_idx=0, end_idx=len(phrase.phrase), underscore_start_idx=0)
    return EntityCaption(caption.image_id, phrase.phrase, phrase.phrase_raw, (alone,))


def collate(items: list[TrainItem]) -> list[TrainItem]:
    return items


class StepBatches(torch.utils.data.Sampler):
    """Batches of ``(epoch, index, full)`` keys for one rank, from ``start_step`` to ``max_steps``.

    Global batch ``s`` is positions ``[s·W·B, (s+1)·W·B)`` of epoch ``e``'s permutation (the last
    incomplete batch of an epoch is dropped); rank r takes its B-long slice. The first
    ``full_items`` of a rank's batch carry every task's targets, the rest only what retrieval needs.
    """

    def __init__(self, size: int, batch_size: int, world: int, rank: int, seed: int, start_step: int,
                 max_steps: int, full_items: int | None = None) -> None:
        super().__init__()
        self.size, self.batch, self.world, self.rank = size, batch_size, world, rank
        self.full = batch_size if full_items is None else full_items
        self.seed, self.start, self.stop = seed, start_step, max_steps
        self.steps_per_epoch = size // (batch_size * world)
        if self.steps_per_epoch < 1:
            raise ValueError(f"{size} training images are fewer than one global batch ({batch_size} x {world} ranks)")

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch

    def keys(self, step: int) -> list[tuple[int, int, bool]]:
        epoch, pos = divmod(step, self.steps_per_epoch)
        order = np.random.default_rng([self.seed, epoch, 2**31 - 1]).permutation(self.size)
        start = (pos * self.world + self.rank) * self.batch
        return [(epoch, int(i), k < self.full) for k, i in enumerate(order[start : start + self.batch])]

    def __iter__(self) -> Iterator[list[tuple[int, int, bool]]]:
        for step in range(self.start, self.stop):
            yield self.keys(step)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)
