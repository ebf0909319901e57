"""FIND's multi-task objective on one batch, computed through the public FindModel API.

Every image of the batch is encoded once (``encode_image``); each task enabled for this step then
runs through ``FindModel.run`` with the same embeddings, and its predictions (final layer plus the
deep-supervision layers) are scored by :mod:`training.losses`:

* generic segmentation — the whole batch in one run (class prompts are shared);
* grounded, interactive and interleave grounding — one run per image (prompts differ per image);
* image–text and interleave retrieval — the whole batch in one run, contrastive over the batch
  gathered from every rank.

The module is what DistributedDataParallel wraps, so its ``forward`` returns the total loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from find_ros.model import FindModel, ImageEmbeddings, RegionRef
from find_ros.model.heads import Predictions
from find_ros.model.readout import class_logits, match_logits
from training.cache import unstored
from training.data.items import TrainItem
from training.losses import (
    MaskLossConfig,
    SetLossWeights,
    contrastive_loss,
    gather_with_grad,
    generic_segmentation_loss,
    grounding_loss,
)

TASKS = ("generic_segmentation", "grounded_segmentation", "interactive_segmentation", "image_text_retrieval",
         "interleave_grounding", "interleave_retrieval")
MASK_TASKS = ("generic_segmentation", "grounded_segmentation", "interactive_segmentation", "interleave_grounding")


@dataclass(frozen=True)
class LossConfig:
    weights: dict[str, SetLossWeights]  # the four mask tasks
    retrieval: float = 8.0
    interleave_retrieval: float = 8.0
    points: MaskLossConfig = field(default_factory=MaskLossConfig)
    deep_supervision: bool = True


def input_grid_masks(masks: np.ndarray, image: ImageEmbeddings, index: int) -> Tensor:
    """(N, H, W) bool masks at image ``index``'s original size → (N, H', W') float on the padded
    network input, resized exactly as ``encode_image`` resized the picture (soft at the edges)."""
    rh, rw = image.resized_sizes[index]
    ph, pw = image.input_size
    x = torch.from_numpy(np.ascontiguousarray(masks)).to(image.device, torch.float32)
    if x.shape[0] == 0:
        return x.new_zeros(0, ph, pw)
    shrink = rh < x.shape[-2] or rw < x.shape[-1]
    x = F.interpolate(x[None], size=(rh, rw), mode="bilinear", align_corners=False, antialias=shrink)[0]
    return F.pad(x.clamp_(0, 1), (0, pw - rw, 0, ph - rh))


class FindObjective(nn.Module):
    def __init__(self, model: FindModel, losses: LossConfig, class_names: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.losses = losses
        self.class_names = class_names

    # ------------------------------------------------------------------------------------ helpers

    def supervised_layers(self, out) -> list[Predictions]:  # noqa: ANN001 - a TaskOutput
        """The predictions a loss scores. With deep supervision: the learned queries before the first
        layer and after every layer but the last (``out.aux``, one per layer), then the final layer's
        (``out.predictions``) — num_layers + 1 in all, none twice."""
        if self.losses.deep_supervision and out.aux:
            return [*out.aux, out.predictions]
        return [out.predictions]

    def _weights(self, task: str) -> SetLossWeights:
        return self.losses.weights[task]

    @staticmethod
    def _global_count(n: float, device: torch.device) -> float:
        # Mask2Former normalises by the number of targets over every rank, so each rank's share of
        # the gradient does not depend on how the targets happen to fall across ranks.
        t = torch.tensor([n], dtype=torch.float64, device=device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(t)
            t /= dist.get_world_size()
        return max(float(t), 1.0)

    def _set_total(self, task: str, parts: list[dict[str, Tensor]], targets: int, device: torch.device,
                   logs: dict[str, float]) -> Tensor | None:
        """Weighted sum of a mask task's losses over images and supervised layers. BCE/Dice (and the
        grounding CE, summed over targets) are divided by the number of targets of the global batch;
        the generic CE is already a mean over proposals, averaged over images here."""
        count = self._global_count(targets, device)  # every rank calls it for every enabled task
        if not parts:
            return None
        w = self._weights(task)
        images = max(1, len({p["image"] for p in parts}))
        ce = sum(p["ce"] for p in parts) / (images if task == "generic_segmentation" else count)
        bce = sum(p["bce"] for p in parts) / count
        dice = sum(p["dice"] for p in parts) / count
        logs[f"{task}/ce"] = float(ce.detach())
        logs[f"{task}/bce"] = float(bce.detach())
        logs[f"{task}/dice"] = float(dice.detach())
        return w.ce * ce + w.bce * bce + w.dice * dice

    # -------------------------------------------------------------------------------------- tasks

    def _generic(self, emb: ImageEmbeddings, items: list[TrainItem], logs: dict[str, float]) -> Tensor | None:
        idx = [i for i, it in enumerate(items) if it.masks is not None]
        parts, targets = [], 0
        if idx:
            sub = emb.select(idx)
            out = self.model.run("generic_segmentation", sub, **{"class": list(self.class_names)})
            for j, i in enumerate(idx):
                masks = input_grid_masks(items[i].masks, sub, j)
                labels = torch.as_tensor(items[i].labels, device=masks.device)
                targets += len(labels)
                for layer in self.supervised_layers(out):
                    logits = class_logits(self.model.heads, layer.semantic["object"][j], layer.semantic["class"][j])
                    part = generic_segmentation_loss(logits, layer.masks["object"][j], labels, masks,
                                                     self._weights("generic_segmentation"), self.losses.points)
                    parts.append({**part, "image": i})
        return self._set_total("generic_segmentation", parts, targets, emb.device, logs)

    def _match(self, task: str, out, truth: Tensor, image: int, rows: list[int] | None = None) -> list[dict[str, Tensor]]:  # noqa: ANN001
        """Grounding losses of one single-image run: targets are the query set the read-out matches
        (``rows`` of it, when some targets have no truth), proposals the query set with masks."""
        spec = out.prototype.readout
        parts = []
        for layer in self.supervised_layers(out):
            logits = match_logits(self.model.heads, out, layer)  # what the read-out matches, blend 0 as trained
            if rows is not None:
                logits = logits[rows]
            part = grounding_loss(logits.T, layer.masks[spec.proposals][0], truth, self._weights(task), self.losses.points)
            parts.append({**part, "image": image})
        return parts

    def _grounded(self, emb: ImageEmbeddings, items: list[TrainItem], logs: dict[str, float]) -> Tensor | None:
        parts, targets = [], 0
        for i, it in enumerate(items):
            if not it.grounded:
                continue
            one = emb.select(i)
            out = self.model.run("grounded_segmentation", one, text=[t for t, _ in it.grounded])
            truth = input_grid_masks(np.stack([m for _, m in it.grounded]), one, 0)
            targets += len(truth)
            parts += self._match("grounded_segmentation", out, truth, i)
        return self._set_total("grounded_segmentation", parts, targets, emb.device, logs)

    def _interactive(self, emb: ImageEmbeddings, items: list[TrainItem], logs: dict[str, float]) -> Tensor | None:
        parts, targets = [], 0
        for i, it in enumerate(items):
            if not it.interactive:
                continue
            one = emb.select(i)
            out = self.model.run("interactive_segmentation", one, spatial=[p for ps, _ in it.interactive for p in ps])
            truth = input_grid_masks(np.stack([m for _, m in it.interactive]), one, 0)
            targets += len(truth)
            parts += self._match("interactive_segmentation", out, truth, i)
        return self._set_total("interactive_segmentation", parts, targets, emb.device, logs)

    def _instructions(self, emb: ImageEmbeddings, items: list[TrainItem]) -> dict[int, object]:
        """Encode each item's interleaved instruction once (grounding and retrieval share it)."""
        others = []
        for it in items:
            if it.interleave is not None:
                others += [r for r in it.interleave.regions if r.rgb is not None]
        other_emb = self.model.encode_image([r.rgb for r in others]) if others else None
        position = {id(r): k for k, r in enumerate(others)}
        out = {}
        for i, it in enumerate(items):
            if it.interleave is None:
                continue
            visuals = [r.crop if r.crop is not None
                       else RegionRef(other_emb, mask=r.mask, index=position[id(r)]) if r.rgb is not None
                       else RegionRef(emb, mask=r.mask, index=i) for r in it.interleave.regions]
            with unstored(self.model.vision_encoder):  # crops are cut afresh every time
                out[i] = self.model.encode_instruction(it.interleave.plan.text, visuals)
        return out

    def _interleave_grounding(self, emb: ImageEmbeddings, items: list[TrainItem], instructions: dict[int, object],
                              logs: dict[str, float]) -> Tensor | None:
        parts, targets = [], 0
        for i, instr in instructions.items():
            target = items[i].interleave
            rows = [e for e, m in enumerate(target.masks) if m is not None]
            if not rows:
                continue
            one = emb.select(i)
            out = self.model.run("interleave_grounding", one, interleave=instr)
            truth = input_grid_masks(np.stack([target.masks[e] for e in rows]), one, 0)
            targets += len(truth)
            parts += self._match("interleave_grounding", out, truth, i, rows)
        return self._set_total("interleave_grounding", parts, targets, emb.device, logs)

    def _retrieval(self, task: str, emb: ImageEmbeddings, idx: list[int], values: list, weight: float,
                   logs: dict[str, float], extra: tuple[ImageEmbeddings, list] | None = None) -> Tensor | None:
        """Contrastive loss of one retrieval task; ``values[k]`` (captions or instructions) is the
        query of image ``idx[k]``; ``extra`` adds more (images, queries) pairs (crops and their
        phrases). Images and queries are embedded by separate runs (``embed_images`` /
        ``embed_captions`` / ``embed_instructions``): the prototype gives the image query and the
        text queries no path to each other, so this equals one joint run, at a cost linear in the
        batch instead of images x tokens."""
        if idx or extra:
            images = [self.model.embed_images(emb.select(idx), task)] if idx else []
            if extra:
                images.append(self.model.embed_images(extra[0], task))
                values = list(values) + list(extra[1])
            images = torch.cat(images)
            texts = (self.model.embed_captions(values) if task == "image_text_retrieval"
                     else self.model.embed_instructions(values))
        else:  # this rank has none, but must still take part in the gather
            dim = self.model.config.hidden_dim
            images = texts = emb.pixel.new_zeros(0, dim) + self.model.heads.logit_scale * 0
        images, texts = gather_with_grad(images), gather_with_grad(texts)
        if images.shape[0] < 2:
            return None  # nothing to contrast with
        loss = contrastive_loss(images, texts, self.model.heads.scale())
        logs[f"{task}/contrastive"] = float(loss.detach())
        return weight * loss

    # -------------------------------------------------------------------------------------- step

    def forward(self, items: list[TrainItem], tasks: tuple[str, ...], mask_items: int | None = None
                ) -> tuple[Tensor, dict[str, float]]:
        """Total loss of ``tasks`` on ``items``: retrieval over all of them, the mask tasks over the
        first ``mask_items`` (contrastive losses want many negatives; the mask tasks run per image
        and cost far more, so the retrieval batch may be the larger one)."""
        unknown = set(tasks) - set(TASKS)
        if unknown:
            raise ValueError(f"unknown task(s) {sorted(unknown)}; known: {', '.join(TASKS)}")
        emb = self.model.encode_image([it.rgb for it in items])
        everything = items
        items = items[: len(items) if mask_items is None else mask_items]
        logs: dict[str, float] = {}
        terms: list[Tensor] = []
        if "generic_segmentation" in tasks:
            terms.append(self._generic(emb, items, logs))
        if "grounded_segmentation" in tasks:
            terms.append(self._grounded(emb, items, logs))
        if "interactive_segmentation" in tasks:
            terms.append(self._interactive(emb, items, logs))
        if "image_text_retrieval" in tasks:
            idx = [i for i, it in enumerate(everything) if it.caption]
            pairs = [pair for it in everything for pair in it.phrase_crops]
            extra = None
            if pairs:
                with unstored(self.model.vision_encoder):
                    extra = (self.model.encode_image([c for c, _ in pairs]), [t for _, t in pairs])
            terms.append(self._retrieval("image_text_retrieval", emb, idx, [everything[i].caption for i in idx],
                                         self.losses.retrieval, logs, extra))
        if "interleave_grounding" in tasks or "interleave_retrieval" in tasks:
            use = everything if "interleave_retrieval" in tasks else items
            instructions = self._instructions(emb, use)
            if "interleave_grounding" in tasks:
                grounding = {i: v for i, v in instructions.items() if i < len(items)}
                terms.append(self._interleave_grounding(emb, items, grounding, logs))
            if "interleave_retrieval" in tasks:
                idx = sorted(instructions)
                terms.append(self._retrieval("interleave_retrieval", emb, idx, [instructions[i] for i in idx],
                                             self.losses.interleave_retrieval, logs))
        terms = [t for t in terms if t is not None]
        total = sum(terms) if terms else emb.pixel.sum() * 0
        logs["loss"] = float(total.detach())
        return total, logs
