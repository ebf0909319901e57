"""Evaluation metrics, defined as the FIND paper and the standard tools define them.

* Grounding (grounded and interleave): per referred object, I and U of the predicted and the true
  mask. ``cIoU = ΣI / ΣU`` over the set, ``mIoU`` = mean per-sample IoU, ``precision@0.5`` = share of
  samples with IoU > 0.5 (the paper's "AP50").
* Retrieval: ``IR@K`` = share of text queries whose image is among the K most similar images;
  ``TR@K`` = share of images with at least one of their texts among the K most similar texts.
* Generic segmentation: PQ from torchmetrics (panopticapi's definition), mask mAP from pycocotools'
  COCOeval on the thing instances, semantic mIoU from a confusion matrix over categories.

All meters accumulate sums, never per-pixel history, so memory stays bounded over any set size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor


class GroundingMeter:
    """Accumulates intersections and unions of (prediction, truth) mask pairs."""

    def __init__(self) -> None:
        self.inter: list[float] = []
        self.union: list[float] = []

    def update(self, pred: np.ndarray | Tensor, truth: np.ndarray | Tensor) -> float:
        """Add one sample; returns its IoU. Masks are boolean arrays of the same shape."""
        p = torch.as_tensor(np.asarray(pred) if not isinstance(pred, Tensor) else pred).bool()
        t = torch.as_tensor(np.asarray(truth) if not isinstance(truth, Tensor) else truth).bool()
        if p.shape != t.shape:
            raise ValueError(f"prediction {tuple(p.shape)} and truth {tuple(t.shape)} differ in shape")
        inter = float((p & t).sum())
        union = float((p | t).sum())
        self.inter.append(inter)
        self.union.append(union)
        return inter / union if union > 0 else 1.0

    def __len__(self) -> int:
        return len(self.inter)

    def compute(self) -> dict[str, float]:
        if not self.inter:
            return {"cIoU": float("nan"), "mIoU": float("nan"), "precision@0.5": float("nan"), "count": 0}
        inter, union = np.asarray(self.inter), np.asarray(self.union)
        iou = np.where(union > 0, inter / np.maximum(union, 1.0), 1.0)
        return {
            "cIoU": float(inter.sum() / max(union.sum(), 1.0)),
            "mIoU": float(iou.mean()),
            "precision@0.5": float((iou > 0.5).mean()),
            "count": len(iou),
        }


def recall_at_k(similarity: Tensor, positives: Sequence[Sequence[int]], ks: Sequence[int]) -> dict[int, float]:
    """``similarity`` (queries, gallery); ``positives[i]``: gallery indices that answer query i.
    Returns {K: share of queries with a positive among their top K}."""
    if similarity.dim() != 2 or similarity.shape[0] != len(positives):
        raise ValueError(f"similarity {tuple(similarity.shape)} does not match {len(positives)} queries")
    if similarity.shape[0] == 0:
        return {k: float("nan") for k in ks}
    # Rank of the best positive = number of gallery items strictly more similar than it.
    pos = torch.zeros_like(similarity, dtype=torch.bool)
    for i, items in enumerate(positives):
        if not items:
            raise ValueError(f"query {i} has no positive in the gallery")
        pos[i, list(items)] = True
    best = similarity.masked_fill(~pos, float("-inf")).max(dim=1).values
    rank = (similarity > best[:, None]).sum(dim=1)
    return {k: float((rank < k).float().mean()) for k in ks}


def retrieval_metrics(similarity: Tensor, text_image: Sequence[int], ks: Sequence[int] = (1, 5, 10),
                      prefix: str = "") -> dict[str, float]:
    """``similarity`` (texts, images); ``text_image[t]``: the image that text t describes.
    Returns IR@K (text → image) and TR@K (image → its texts)."""
    images = similarity.shape[1]
    ir = recall_at_k(similarity, [[i] for i in text_image], ks)
    texts_of: list[list[int]] = [[] for _ in range(images)]
    for t, i in enumerate(text_image):
        texts_of[i].append(t)
    keep = [i for i in range(images) if texts_of[i]]
    tr = recall_at_k(similarity.T[keep], [texts_of[i] for i in keep], ks)
    out = {f"{prefix}IR@{k}": v for k, v in ir.items()}
    out.update({f"{prefix}TR@{k}": v for k, v in tr.items()})
    out[f"{prefix}gallery"] = images
    out[f"{prefix}queries"] = int(similarity.shape[0])
    return out


class SemanticMeter:
    """Confusion matrix over category indices; pixels with truth ``ignore`` are skipped."""

    def __init__(self, num_classes: int, ignore: int = -1) -> None:
        self.num_classes = num_classes
        self.ignore = ignore
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
        self.missed = torch.zeros(num_classes, dtype=torch.long)  # true pixels predicted as nothing

    def update(self, pred: Tensor, truth: Tensor) -> None:
        keep = truth != self.ignore
        t, p = truth[keep].long(), pred[keep].long()
        p = torch.where((p >= 0) & (p < self.num_classes), p, torch.full_like(p, self.num_classes))
        # A prediction of "nothing" counts as wrong for its true class (column num_classes dropped).
        idx = t * (self.num_classes + 1) + p
        counts = torch.bincount(idx, minlength=self.num_classes * (self.num_classes + 1))
        self.confusion += counts.view(self.num_classes, self.num_classes + 1)[:, : self.num_classes]
        self.missed += counts.view(self.num_classes, self.num_classes + 1)[:, self.num_classes]

    def compute(self) -> float:
        tp = self.confusion.diag().float()
        gt = self.confusion.sum(1).float() + self.missed.float()
        pred = self.confusion.sum(0).float()
        union = gt + pred - tp
        present = gt > 0
        if not present.any():
            return float("nan")
        return float((tp[present] / union[present]).mean())


class PanopticMeter:
    """PQ (torchmetrics, panopticapi's definition), semantic mIoU and thing mask mAP (pycocotools).

    ``update`` takes per image a (H, W) segment-id map with a category per segment for both the
    prediction and the truth, plus per predicted thing segment a confidence for mAP.
    """

    def __init__(self, things: Sequence[int], stuffs: Sequence[int]) -> None:
        from torchmetrics.detection import PanopticQuality

        self.things, self.stuffs = sorted(things), sorted(stuffs)
        self.categories = self.things + self.stuffs
        self.index = {c: i for i, c in enumerate(self.categories)}
        # Pixels the prediction leaves unlabelled get a category of their own rather than
        # torchmetrics' "void": torchmetrics drops true segments mostly covered by void predictions,
        # where panopticapi counts them as missed (false negatives). The extra class only collects
        # false positives and is left out of the averages.
        self.unlabelled = max(self.categories, default=0) + 1000
        self.pq = PanopticQuality(things=set(self.things), stuffs=set(self.stuffs) | {self.unlabelled},
                                  allow_unknown_preds_category=False)
        self.semantic = SemanticMeter(len(self.categories))
        self._gt: list[dict] = []
        self._dt: list[dict] = []
        self._images: list[dict] = []

    def _pairs(self, seg: np.ndarray, cats: dict[int, int], fill: int) -> Tensor:
        cat = np.full(seg.shape, fill, dtype=np.int64)
        for sid, c in cats.items():
            cat[seg == sid] = c
        labelled = np.isin(seg, list(cats)) if cats else np.zeros(seg.shape, bool)
        return torch.from_numpy(np.stack([cat, np.where(labelled, seg, 0)], axis=-1))

    def _category_index(self, seg: np.ndarray, cats: dict[int, int]) -> Tensor:
        out = np.full(seg.shape, -1, dtype=np.int64)
        for sid, c in cats.items():
            if c in self.index:
                out[seg == sid] = self.index[c]
        return torch.from_numpy(out)

    def update(self, pred_seg: np.ndarray, pred_cats: dict[int, int], pred_scores: dict[int, float],
               true_seg: np.ndarray, true_cats: dict[int, int], true_crowd: set[int] = frozenset()) -> None:
        from pycocotools import mask as mask_utils

        if pred_seg.shape != true_seg.shape:
            raise ValueError(f"prediction {pred_seg.shape} and truth {true_seg.shape} differ in shape")
        # Truth pixels outside any segment (COCO's void, id 0) get category -1: torchmetrics ignores them.
        self.pq.update(self._pairs(pred_seg, pred_cats, self.unlabelled)[None], self._pairs(true_seg, true_cats, -1)[None])
        truth_index = self._category_index(true_seg, true_cats)
        self.semantic.update(self._category_index(pred_seg, pred_cats), truth_index)
        image_id = len(self._images) + 1
        h, w = true_seg.shape
        self._images.append({"id": image_id, "height": h, "width": w})
        thing_set = set(self.things)
        for sid, c in true_cats.items():
            if c in thing_set:
                m = np.asfortranarray(true_seg == sid)
                if not m.any():
                    continue
                rle = mask_utils.encode(m)
                self._gt.append({"id": len(self._gt) + 1, "image_id": image_id, "category_id": c, "segmentation": rle,
                                 "area": float(m.sum()), "bbox": list(mask_utils.toBbox(rle)),
                                 "iscrowd": int(sid in true_crowd)})
        for sid, c in pred_cats.items():
            if c in thing_set:
                m = np.asfortranarray(pred_seg == sid)
                if m.any():
                    self._dt.append({"image_id": image_id, "category_id": c, "segmentation": mask_utils.encode(m),
                                     "score": float(pred_scores.get(sid, 1.0))})

    def mask_map(self) -> tuple[float, float]:
        """(mAP@[.5:.95], AP50) over thing instances, as COCOeval computes them."""
        import contextlib
        import io

        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        if not self._gt:
            return float("nan"), float("nan")
        gt = COCO()
        gt.dataset = {"images": self._images, "annotations": self._gt,
                      "categories": [{"id": c, "name": str(c)} for c in self.things]}
        with contextlib.redirect_stdout(io.StringIO()):  # COCOeval prints its tables; our stdout is JSON
            gt.createIndex()
            if not self._dt:
                return 0.0, 0.0
            dt = gt.loadRes([dict(d, id=i + 1) for i, d in enumerate(self._dt)])
            ev = COCOeval(gt, dt, iouType="segm")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        return float(max(ev.stats[0], 0.0)), float(max(ev.stats[1], 0.0))

    def panoptic_quality(self) -> dict[str, float]:
        """panopticapi's averages from torchmetrics' per-class sums: classes with no true positive,
        false positive or false negative are left out; PQ_th / PQ_st over things / stuff."""
        m = self.pq
        order = sorted(self.things) + sorted(set(self.stuffs) | {self.unlabelled})  # torchmetrics' class order
        tp, fp, fn = (getattr(m, k).double() for k in ("true_positives", "false_positives", "false_negatives"))
        iou = m.iou_sum.double()
        sq = torch.where(tp > 0, iou / tp.clamp_min(1), torch.zeros_like(iou))
        den = tp + 0.5 * fp + 0.5 * fn
        rq = torch.where(den > 0, tp / den.clamp_min(1e-12), torch.zeros_like(den))
        pq = sq * rq
        out = {}
        for name, keep in (("", set(self.categories)), ("_th", set(self.things)), ("_st", set(self.stuffs))):
            sel = torch.tensor([c in keep for c in order]) & (den > 0)
            for metric, values in (("PQ", pq), ("SQ", sq), ("RQ", rq)):
                out[metric + name] = float(values[sel].mean()) if bool(sel.any()) else float("nan")
        return out

    def compute(self) -> dict[str, float]:
        m_ap, ap50 = self.mask_map()
        return {**self.panoptic_quality(), "mAP": m_ap, "AP50": ap50, "mIoU": self.semantic.compute(),
                "images": len(self._images)}
