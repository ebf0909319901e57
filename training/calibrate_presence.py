"""Calibrate a model's presence decision (find_ros.model.presence) on walk-through bags.

    python -m training.calibrate_presence [--model DIR] [--seeds 20-29,100-129] [--frames 40] [--size 320x240]
                                          [--features A,B,...] [--work DIR] [--threads N] [--write]

Grounds a text and a crop instruction for every object of each seed's walk-through in every frame,
prints one JSON line per presence feature and entity kind (its AUROC alone for present against
absent frames), fits one logistic model per kind on the features --features names (default
find_ros.model.presence.DEFAULT_FEATURES; the names are stored with the fit), picks the threshold
that maximises the smaller of precision and recall over both kinds on out-of-fold confidences (each
seed judged by a fit on the other seeds, so the threshold allows for the fit's optimism), prints
the fitted figures, and with --write stores the result under ``presence`` in the model's
config.json. Use seeds that no test, demo or evaluation uses (the default model: 20-29 and
100-129, forty walk-throughs; its evaluation, benchmarks/presence.py, uses 40-49).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

import numpy as np

from find_ros.demo.scoring import auroc
from find_ros.model.presence import (
    DEFAULT_FEATURES,
    PRESENCE_FEATURES,
    LogisticPresence,
    PresenceSettings,
)
from training.presence_data import (
    PresenceSample,
    add_walkthrough_arguments,
    load_and_collect,
    parse_seeds,
)

THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.01), 2)
ENTITY_KIND = {"text": "text", "crop": "visual"}  # instruction kind → PresenceSettings kind


def signal_aurocs(samples: list[PresenceSample]) -> list[dict[str, object]]:
    """AUROC of every presence feature alone for present against absent, per instruction kind."""
    figures = []
    for kind in ENTITY_KIND:
        chosen = [s for s in samples if s.kind == kind]
        present = [s.present for s in chosen]
        for name in PRESENCE_FEATURES:
            figures.append({"figure": "signal_auroc", "kind": kind, "signal": name,
                            "auroc": round(auroc([s.signals.feature(name) for s in chosen], present), 4)})
    return figures


def fit(samples: list[PresenceSample], features: tuple[str, ...] = DEFAULT_FEATURES) -> dict[str, LogisticPresence]:
    """One logistic model per entity kind on ``features`` of ``samples``."""
    from sklearn.linear_model import LogisticRegression

    models = {}
    for kind, entity_kind in ENTITY_KIND.items():
        chosen = [s for s in samples if s.kind == kind]
        x = np.array([s.signals.features(features) for s in chosen])
        y = np.array([s.present for s in chosen])
        if y.all() or not y.any():
            raise ValueError(f"{kind} instructions: the seeds give only {'present' if y.all() else 'absent'} frames")
        regression = LogisticRegression(max_iter=2000).fit(x, y)
        models[entity_kind] = LogisticPresence(tuple(float(w) for w in regression.coef_[0]), float(regression.intercept_[0]))
    return models


def precision_recall(confidences: list[float], present: list[bool], threshold: float) -> tuple[float, float]:
    found = [c >= threshold for c in confidences]
    hits = sum(f and p for f, p in zip(found, present))
    return hits / max(sum(found), 1), hits / max(sum(present), 1)


def out_of_fold(samples: list[PresenceSample], features: tuple[str, ...]) -> dict[str, tuple[list[float], list[bool]]]:
    """Per instruction kind, every sample's confidence from a fit on the OTHER seeds (leave one seed
    out) and whether it is present: how the fit judges walk-throughs it has not seen."""
    seeds = sorted({s.seed for s in samples})
    if len(seeds) < 2:
        raise ValueError("choosing the threshold out of fold needs at least two seeds")
    confidence = [0.0] * len(samples)
    for held in seeds:
        settings = PresenceSettings(**fit([s for s in samples if s.seed != held], features), features=features)
        for i, s in enumerate(samples):
            if s.seed == held:
                confidence[i] = settings.confidence(s.signals, ENTITY_KIND[s.kind] == "visual")
    # In the samples' order, per kind.
    return {kind: ([c for c, s in zip(confidence, samples) if s.kind == kind], [s.present for s in samples if s.kind == kind])
            for kind in ENTITY_KIND}


def choose_threshold(per_kind: dict[str, tuple[list[float], list[bool]]]) -> float:
    """The threshold whose worst precision or recall over both kinds is best (the lowest such)."""
    worst = [min(min(precision_recall(c, p, float(t))) for c, p in per_kind.values()) for t in THRESHOLDS]
    return float(THRESHOLDS[int(np.argmax(worst))])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_walkthrough_arguments(parser, seeds="20-29,100-129")
    parser.add_argument("--write", action="store_true", help="store the calibration in the model's config.json")
    parser.add_argument("--features", default=",".join(DEFAULT_FEATURES),
                        help=f"comma-separated presence features (of {', '.join(PRESENCE_FEATURES)})")
    args = parser.parse_args(argv)
    features = tuple(n.strip() for n in args.features.split(","))
    try:
        PresenceSettings(features=features)
    except ValueError as error:
        parser.error(f"--features: {error}")
    _, model_dir, samples = load_and_collect(parser, args)
    seeds = parse_seeds(args.seeds)
    for figure in signal_aurocs(samples):
        print(json.dumps(figure))
    settings = PresenceSettings(**fit(samples, features), features=features)
    # The weights come from every seed; the threshold from confidences each seed got from a fit on
    # the others, since a fit judges its own samples more confidently than new walk-throughs.
    held_out = out_of_fold(samples, features)
    settings = replace(settings, threshold=choose_threshold(held_out))
    fitted = []
    for kind, entity_kind in ENTITY_KIND.items():
        chosen = [s for s in samples if s.kind == kind]
        confidences = [settings.confidence(s.signals, entity_kind == "visual") for s in chosen]
        present = [s.present for s in chosen]
        precision, recall = precision_recall(confidences, present, settings.threshold)
        fold_precision, fold_recall = precision_recall(*held_out[kind], settings.threshold)
        fitted.append({"figure": "calibration_fit", "kind": kind, "auroc": round(auroc(confidences, present), 4),
                       "precision": round(precision, 4), "recall": round(recall, 4), "threshold": settings.threshold,
                       "out_of_fold_auroc": round(auroc(*held_out[kind]), 4),
                       "out_of_fold_precision": round(fold_precision, 4), "out_of_fold_recall": round(fold_recall, 4),
                       "present": sum(present), "absent": len(present) - sum(present)})
        print(json.dumps(fitted[-1]))
    command = (f"python -m training.calibrate_presence --seeds {args.seeds} --frames {args.frames} --size {args.size} --write"
               + (f" --features {args.features}" if features != DEFAULT_FEATURES else "")
               + (f" --model {args.model}" if args.model else ""))
    settings = replace(settings, calibration={"command": command, "seeds": seeds, "frames": args.frames,
                                              "size": [int(v) for v in args.size.split("x")],
                                              "fit": fitted})
    print(json.dumps({"figure": "presence", **settings.to_dict()}))
    if args.write:
        from find_ros.model.config import FindConfig

        path = model_dir / "config.json"
        config = FindConfig.load(path)
        config.presence = settings.to_dict()
        config.save(path)
        print(f"wrote presence into {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
