"""Evaluate a FIND model on one split: ``python -m training.evaluate --model DIR --data DIR --json``.

Every number comes from the model's public read-outs (``segment``, ``ground_phrases``, ``ground``,
``embed_images`` / ``embed_captions`` / ``embed_instructions``) — the same calls the nodes and the
CLI make — scored by :mod:`training.metrics`:

* generic segmentation (panoptic PNG + JSON): PQ/SQ/RQ, thing mask mAP and AP50, semantic mIoU;
* grounded segmentation (refs): one run per referring expression; cIoU, mIoU, precision@0.5;
  also by expression kind where the refs say it (``grounded_attributes``, ``grounded_binary``,
  ``grounded_support``, ``grounded_superlative``; the synthetic world's refs do);
* interleave grounding (FIND-Bench): each phrase turns visual with probability ``--visual-prob``
  (drawn from ``--seed`` and the image id, so the set is fixed), showing its ``reference`` segment
  in another image; every entity's mask is scored; cIoU, mIoU, precision@0.5, also for entities
  naming things and stuff apart (``interleave_grounding_things`` / ``_stuff``);
* image–text retrieval (captions): every caption against every image; IR@1/5/10, TR@1/5/10;
* interleave retrieval (FIND-Bench): the same interleaved instructions against every image; IR@5/10.

The result is one JSON object (``--json``) or a table. With several ``--data`` directories (held-out
seeds) it holds each run under ``runs`` and the ``mean`` and ``sd`` (sample) of every figure. Images are processed in batches and only
sums and embeddings are kept, so memory does not grow with the masks of the split.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from find_ros.model.results import SegmentationSettings

EVAL_TASKS = ("generic", "grounded", "interleave_grounding", "crop_grounding", "image_text_retrieval",
              "interleave_retrieval")
# crop_grounding is ours, not the paper's: the instruction is one visual entity alone ("<0>"), an RGB
# crop around the phrase's reference segment in another image — how a robot user points at a thing.


def _chunks(seq: list, n: int):  # noqa: ANN202
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def evaluate(model: Any, data: Any, *, tasks: tuple[str, ...] = EVAL_TASKS, limit: int | None = None,
             batch_size: int = 8, visual_prob: float = 0.5, seed: int = 0,
             segmentation: SegmentationSettings | None = None, progress: bool = False) -> dict[str, Any]:
    """Evaluate ``model`` (a FindModel) on ``data`` (a :class:`training.data.dataset.FindDataset`);
    generic segmentation is read out with ``segmentation`` (its panoptic mode)."""
    from find_ros.image_io import ENTITY_CROP_CONTEXT, crop_around
    from find_ros.model import RegionRef
    from find_ros.model.results import mask_box
    from training.data.interleave import plan_instruction, visual_flags
    from training.metrics import GroundingMeter, PanopticMeter, retrieval_metrics

    model.eval()
    samples = data.samples[:limit] if limit else list(data.samples)
    cats = data.categories
    want = set(tasks)
    generic = PanopticMeter([c for c, t in zip(cats.ids, cats.isthing) if t], [c for c, t in zip(cats.ids, cats.isthing) if not t]) \
        if "generic" in want and any(s.panoptic_file for s in samples) else None
    grounded = GroundingMeter() if "grounded" in want else None
    interleave = GroundingMeter() if "interleave_grounding" in want else None
    # Breakdowns: grounded by expression kind (Ref.kinds), interleave entities on things and on stuff.
    grounded_kinds: dict[str, GroundingMeter] = {}
    interleave_split = {"things": GroundingMeter(), "stuff": GroundingMeter()}
    by_crop = GroundingMeter() if "crop_grounding" in want else None
    image_vecs: list[torch.Tensor] = []
    captions: list[str] = []
    caption_image: list[int] = []
    instr_vecs: list[torch.Tensor] = []
    instr_image: list[int] = []
    need_images = bool(want & {"image_text_retrieval", "interleave_retrieval"})

    from tqdm import tqdm

    bar = tqdm(total=len(samples), desc="evaluate", unit="img", disable=not progress, file=sys.stderr)
    with torch.no_grad():
        for batch_start in range(0, len(samples), batch_size):
            batch = samples[batch_start : batch_start + batch_size]
            rgbs = [data.image(s) for s in batch]
            emb = model.encode_image(rgbs)
            if need_images:
                image_vecs.append(model.embed_images(emb, "image_text_retrieval").cpu())
            for b, sample in enumerate(batch):
                gallery_index = batch_start + b
                one = emb.select(b)
                panoptic = data.panoptic_ids(sample) if sample.panoptic_file else None
                if generic is not None and panoptic is not None:
                    result = model.segment(one, list(cats.names), stuff=list(cats.stuff_names), settings=segmentation,
                                           modes=("panoptic",))[0]
                    pred_cats = {s.id: cats.ids[s.class_index] for s in result.segments}
                    scores = {s.id: s.score for s in result.segments}
                    true_cats = {s.id: s.category_id for s in sample.segments}
                    crowd = {s.id for s in sample.segments if s.iscrowd}
                    generic.update(result.panoptic.astype(np.int64), pred_cats, scores, panoptic, true_cats, crowd)
                if grounded is not None:
                    for ref in sample.refs:
                        truth = data.object_mask(sample, ref.ann_id, panoptic)
                        for k, sentence in enumerate(ref.sentences):
                            answer = model.ground_phrases(one, [sentence])[0].entities[0]
                            grounded.update(answer.mask, truth)
                            if ref.kind(k) is not None:
                                grounded_kinds.setdefault(ref.kind(k), GroundingMeter()).update(answer.mask, truth)
                if sample.captions:
                    captions.extend(sample.captions)
                    caption_image.extend([gallery_index] * len(sample.captions))
                if interleave is not None or "interleave_retrieval" in want:
                    for k, caption in enumerate(sample.entities):
                        rng = np.random.default_rng([seed, sample.image_id, k])
                        flags = visual_flags(len(caption.phrases), visual_prob, rng)
                        # Only phrases with a reference can be shown as a picture of another image.
                        flags = [f and p.reference is not None for f, p in zip(flags, caption.phrases)]
                        plan = plan_instruction(caption, flags, flags)
                        refs = [data.samples[data.by_id[v.image_id]] for v in plan.visuals]
                        visuals = []
                        if refs:
                            ref_emb = model.encode_image([data.image(r) for r in refs])
                            visuals = [RegionRef(ref_emb, mask=data.object_mask(r, v.segment_id), index=j)
                                       for j, (r, v) in enumerate(zip(refs, plan.visuals))]
                        instr = model.encode_instruction(plan.text, visuals)
                        if interleave is not None:
                            answer = model.ground(one, instr)[0]
                            things = {seg.id for seg in sample.segments if seg.isthing}
                            for entity, target in zip(answer.entities, plan.targets):
                                if target is not None:
                                    truth = data.object_mask(sample, target, panoptic)
                                    interleave.update(entity.mask, truth)
                                    if sample.segments:
                                        interleave_split["things" if target in things else "stuff"].update(entity.mask, truth)
                        if "interleave_retrieval" in want:
                            instr_vecs.append(model.embed_instructions([instr]).cpu())
                            instr_image.append(gallery_index)
                if by_crop is not None:
                    for caption in sample.entities:
                        for phrase in caption.phrases:
                            if phrase.reference is None:
                                continue
                            ref = data.samples[data.by_id[phrase.reference.image_id]]
                            box = mask_box(data.object_mask(ref, phrase.reference.annotation_id))
                            if box is None:
                                continue
                            crop = crop_around(data.image(ref), box, ENTITY_CROP_CONTEXT)
                            answer = model.ground(one, model.encode_instruction("<0>", [crop]))[0]
                            by_crop.update(answer.entities[0].mask, data.object_mask(sample, phrase.annotation_id, panoptic))
            bar.update(len(batch))
    bar.close()

    out: dict[str, Any] = {"images": len(samples)}
    if generic is not None:
        out["generic"] = generic.compute()
    if grounded is not None and len(grounded):
        out["grounded"] = grounded.compute()
    for kind, meter in sorted(grounded_kinds.items()):
        out[f"grounded_{kind}"] = meter.compute()
    if interleave is not None and len(interleave):
        out["interleave_grounding"] = interleave.compute()
        for part, meter in interleave_split.items():
            if len(meter):
                out[f"interleave_grounding_{part}"] = meter.compute()
    if by_crop is not None and len(by_crop):
        out["crop_grounding"] = by_crop.compute()
    images = torch.cat(image_vecs) if image_vecs else None
    if "image_text_retrieval" in want and captions and images is not None:
        texts = torch.cat([model.embed_captions(chunk).cpu() for chunk in _chunks(captions, 64)])
        out["image_text_retrieval"] = retrieval_metrics(texts @ images.T, caption_image, (1, 5, 10))
    if "interleave_retrieval" in want and instr_vecs and images is not None:
        sim = torch.cat(instr_vecs) @ images.T
        m = retrieval_metrics(sim, instr_image, (1, 5, 10))
        out["interleave_retrieval"] = {k: v for k, v in m.items() if not k.startswith("TR")}
    return out


def finite(value: Any) -> Any:
    """NaN/inf (a metric with nothing to measure) as null: strict JSON has no NaN."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _table(result: dict[str, Any]) -> str:
    lines = []
    for key, value in result.items():
        if isinstance(value, list):  # the runs of several data directories
            lines += [f"{key}[{i}]:\n" + "\n".join("  " + line for line in _table(v).splitlines()) for i, v in enumerate(value)]
        elif isinstance(value, dict):
            lines.append(f"{key}:")
            lines += [f"  {k:<16} {v:.4f}" if isinstance(v, float) else f"  {k:<16} {v}" for k, v in value.items()]
        else:
            lines.append(f"{key}: {value}")
    return "\n".join(lines)


def flat_figures(result: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Every number of an evaluation as ``"task.metric"``: counts included, strings left out."""
    out: dict[str, float] = {}
    for key, value in result.items():
        if isinstance(value, dict):
            out.update(flat_figures(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out


def spread(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation (ddof 1) of each figure that every run reports."""
    figures = [flat_figures(r) for r in runs]
    keys = [k for k in figures[0] if all(k in f for f in figures[1:])]
    values = {k: np.array([f[k] for f in figures]) for k in keys}
    return {"mean": {k: float(v.mean()) for k, v in values.items()},
            "sd": {k: float(v.std(ddof=1)) for k, v in values.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model directory (default: the shipped default model)")
    parser.add_argument("--data", required=True, nargs="+",
                        help="dataset directory (COCO / FIND-Bench / synthetic layout); several: each is evaluated "
                             "and the mean and sample standard deviation of every figure are reported too")
    parser.add_argument("--split", default=None, help="split name (default: the only one, or val)")
    parser.add_argument("--tasks", default=",".join(EVAL_TASKS), help=f"comma-separated subset of {','.join(EVAL_TASKS)}")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N images only")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--visual-prob", type=float, default=0.5, help="probability that an entity is shown as a picture")
    parser.add_argument("--seed", type=int, default=0, help="seed of which entities turn visual")
    read_out = SegmentationSettings()
    parser.add_argument("--object-threshold", type=float, default=read_out.object_threshold)
    parser.add_argument("--overlap-threshold", type=float, default=read_out.overlap_threshold)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    bad = sorted(set(tasks) - set(EVAL_TASKS))
    if bad:
        parser.error(f"unknown task(s) {', '.join(bad)}; choose from {', '.join(EVAL_TASKS)}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        segmentation = SegmentationSettings(args.object_threshold, args.overlap_threshold)  # checked before loading
        from find_ros.model import FindModel, resolve_model_dir
        from training.data.dataset import load_split
        from training.data.sources import discover

        model_dir = resolve_model_dir(args.model)
        model = FindModel.from_pretrained(model_dir, device=args.device)
        sources = [discover(d, args.split) for d in args.data]  # every directory checked before any runs
        runs = []
        for directory, source in zip(args.data, sources):
            start = time.perf_counter()
            data = load_split(source)
            result = evaluate(model, data, tasks=tasks, limit=args.limit, batch_size=args.batch_size,
                              visual_prob=args.visual_prob, seed=args.seed,
                              segmentation=segmentation, progress=not args.no_progress)
            runs.append({"data": str(Path(directory)), "split": data.source.name, **result,
                         "seconds": round(time.perf_counter() - start, 2)})
    except (ValueError, FileNotFoundError) as error:
        print(f"training.evaluate: error: {error}", file=sys.stderr)
        return 2
    head = {"model": str(model_dir), "untrained": bool(model.untrained)}
    result = {**head, **runs[0]} if len(runs) == 1 else {**head, **spread(runs), "runs": runs}
    result = finite(result)
    print(json.dumps(result, allow_nan=False) if args.json else _table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
