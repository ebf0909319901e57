"""Can a linear probe read where a thing is from the model's proposals? (issue 19's audit, as a tool)

    python -m training.probe_positions --model DIR --data DIR [--limit 120] [--json]

For every ground-truth thing of a split, the generic-segmentation proposal whose mask overlaps it
most (IoU at the stride-4 grid) gives its final interface state; a ridge regression
(scikit-learn ``RidgeCV``) from those states to the thing's horizontal and vertical centre (as
fractions of the image) is fitted on the first half of the images and scored on the second half.
Held-out R² near 1 means the states say where a thing is; at or below 0 they do not, and "left of"
or "rightmost" cannot be read from them. One JSON line per figure.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np
import torch


def proposal_positions(model: Any, data: Any, limit: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(states (N, D), centres (N, 2) as x, y fractions, image index (N,)) for every thing."""
    from training.objective import input_grid_masks

    names = list(data.categories.names)
    isthing = {c: t for c, t in zip(data.categories.ids, data.categories.isthing)}
    states, centres, images = [], [], []
    samples = data.samples[:limit] if limit else data.samples
    with torch.no_grad():
        for i, sample in enumerate(samples):
            emb = model.encode_image(data.image(sample))
            out = model.run("generic_segmentation", emb, **{"class": names})
            rows = out.state.layout.query_slices["object"]
            masks = out.predictions.masks["object"][0] > 0  # sigmoid >= 0.5, (Q, H/4, W/4)
            query_states = out.state.queries[0, rows].float().cpu().numpy()
            panoptic = data.panoptic_ids(sample)
            for segment in sample.segments:
                if not isthing.get(segment.category_id, False):
                    continue
                truth = panoptic == segment.id
                if not truth.any():
                    continue
                grid = input_grid_masks(truth[None], emb, 0)[0]
                grid = torch.nn.functional.interpolate(grid[None, None].float(), size=masks.shape[-2:], mode="area")[0, 0] >= 0.5
                inter = (masks & grid).flatten(1).sum(1).float()
                union = (masks | grid).flatten(1).sum(1).float().clamp(min=1)
                ys, xs = np.nonzero(truth)
                states.append(query_states[int((inter / union).argmax())])
                centres.append((xs.mean() / truth.shape[1], ys.mean() / truth.shape[0]))
                images.append(i)
    return np.array(states), np.array(centres), np.array(images)


def probe(states: np.ndarray, centres: np.ndarray, images: np.ndarray) -> dict[str, float]:
    """Held-out R² of a ridge probe (fitted on the first half of the images) per axis."""
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    split = np.median(np.unique(images))
    train, test = images < split, images >= split
    if train.sum() < 10 or test.sum() < 10:
        raise ValueError(f"too few things to probe ({int(train.sum())} train, {int(test.sum())} test)")
    out = {"train_things": int(train.sum()), "test_things": int(test.sum())}
    for axis, name in enumerate(("x", "y")):
        fit = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 13))).fit(states[train], centres[train, axis])
        out[f"r2_{name}"] = float(r2_score(centres[test, axis], fit.predict(states[test])))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.probe_positions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model directory (default: the shipped default model)")
    parser.add_argument("--data", required=True, help="dataset directory (synthetic or COCO layout)")
    parser.add_argument("--split", default=None)
    parser.add_argument("--limit", type=int, default=120, help="first N images (default 120)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="JSON lines (the default output as well)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        from find_ros.model import FindModel, resolve_model_dir
        from training.data.dataset import load_split
        from training.data.sources import discover

        model_dir = resolve_model_dir(args.model)
        source = discover(args.data, args.split)
        model = FindModel.from_pretrained(model_dir, device="cpu")
        figures = probe(*proposal_positions(model, load_split(source), args.limit))
    except (ValueError, FileNotFoundError) as error:
        print(f"training.probe_positions: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"figure": "proposal_position_probe", "model": str(model_dir), "data": args.data,
                      "style": model.config.decoder_style, "neck": model.config.neck, **figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
