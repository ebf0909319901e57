"""training.calibrate_presence: fits the presence features it is told to, by name."""

from __future__ import annotations

import numpy as np
import pytest

from find_ros.model.presence import PresenceSettings, PresenceSignals
from training.calibrate_presence import choose_threshold, fit, main
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
            samples.append(PresenceSample(20, i, kind, 1, present, signals, 0.5, True))
    return samples


def test_the_fit_reads_the_named_features_and_its_threshold_separates() -> None:
    samples = _samples()
    features = ("match", "mean_margin")
    models = fit(samples, features)
    assert all(abs(m.weights[1]) > 5 * abs(m.weights[0]) for m in models.values())
    settings = PresenceSettings(**models, features=features)
    threshold = choose_threshold(settings, samples)
    right = [settings.found(settings.confidence(s.signals, s.kind == "crop"), threshold) == s.present for s in samples]
    assert np.mean(right) > 0.9


def test_an_unknown_feature_is_refused_before_anything_is_rendered(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--features", "match,colour"])
    assert "--features" in capsys.readouterr().err
