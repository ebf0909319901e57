"""training.calibrate_presence: fits the presence features it is told to, by name."""

from __future__ import annotations

import numpy as np
import pytest

from find_ros.model.presence import PresenceSettings, PresenceSignals
from training.calibrate_presence import choose_threshold, fit, main, out_of_fold
from training.presence_data import PresenceSample


def _samples() -> list[PresenceSample]:
    # Present frames lead the others by a wide mean margin; the match logit is noise.
    rng = np.random.default_rng(0)
    samples = []
    for i in range(200):
        present = i % 2 == 0
        for kind in ("text", "crop"):
            signals = PresenceSignals(match=float(rng.normal()), void_margin=0.0, mask_fraction=0.01,
                                      mean_margin=float(rng.normal(3.0 if present else 0.0)))
            samples.append(PresenceSample(20 + i % 4, i, kind, 1, present, signals, 0.5, True))
    return samples


def test_the_fit_reads_the_named_features_and_its_threshold_separates() -> None:
    samples = _samples()
    features = ("match", "mean_margin")
    models = fit(samples, features)
    assert all(abs(m.weights[1]) > 5 * abs(m.weights[0]) for m in models.values())
    settings = PresenceSettings(**models, features=features)
    held_out = out_of_fold(samples, features)
    assert all(len(held_out[k][0]) == sum(s.kind == k for s in samples) for k in ("text", "crop"))
    threshold = choose_threshold(held_out)
    right = [settings.found(settings.confidence(s.signals, s.kind == "crop"), threshold) == s.present for s in samples]
    assert np.mean(right) > 0.9


def test_an_unknown_feature_is_refused_before_anything_is_rendered(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--features", "match,colour"])
    assert "--features" in capsys.readouterr().err


def test_the_threshold_is_chosen_on_seeds_the_fit_did_not_see() -> None:
    samples = _samples()
    with pytest.raises(ValueError, match="at least two seeds"):
        out_of_fold([s for s in samples if s.seed == 20], ("match", "mean_margin"))
    # Seed 23's absent frames score like present ones: only a fit that never saw seed 23 is fooled
    # by them, so its out-of-fold confidences there are higher than the in-sample fit's.
    shifted = [s if s.seed != 23 or s.present else PresenceSample(s.seed, s.frame, s.kind, s.object_id, s.present,
               PresenceSignals(match=s.signals.match, void_margin=0.0, mask_fraction=0.01, mean_margin=2.0), 0.5, True)
               for s in samples]
    held_out = out_of_fold(shifted, ("match", "mean_margin"))
    everything = PresenceSettings(**fit(shifted, ("match", "mean_margin")), features=("match", "mean_margin"))
    fooled = [c for c, s in zip(held_out["text"][0], [s for s in shifted if s.kind == "text"]) if s.seed == 23 and not s.present]
    in_sample = [everything.confidence(s.signals, False) for s in shifted if s.kind == "text" and s.seed == 23 and not s.present]
    assert np.mean(fooled) > np.mean(in_sample)
