"""Presence: is a grounded entity in view at all? A calibrated probability and a yes/no.

The match read-out always picks *some* proposal, so its mask alone cannot say "not here". Three
signals of the chosen proposal, measured on present and absent frames of walk-through bags
(``python -m training.calibrate_presence`` prints their AUROCs), do:

* ``match``: its matching logit (scaled cosine) — comparable across frames of one instruction, but
  each instruction, and text against visual entities, sits at its own level;
* ``void_margin``: that logit minus the proposal's logit for Mask2Former's "no object" class
  (the model's own notion of a proposal that is nothing);
* ``mask_fraction``: its mask's share of the frame (a proposal matched for want of a better one
  tends to cover little).

A logistic model per entity kind (text, visual) maps them to the probability of being in view; the
same threshold decides ``found`` for both, so confidences compare across frames and instructions.
The fitted numbers live in the model's ``config.json`` under the key ``presence``
(:meth:`PresenceSettings.to_dict`), so each model carries its own. A model without them uses the
fallback :data:`FALLBACK`: the probability of the entity against "no object" for the chosen proposal,
``sigmoid(void_margin)``, at threshold 0.5 — the model's own two-way decision, uncalibrated.

Plain math: this module imports no torch (results carry its signals).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

PRESENCE_FEATURES = ("match", "void_margin", "log_mask_fraction")
MIN_MASK_FRACTION = 1e-4  # an empty mask counts as this small, so its logarithm stays finite
KINDS = ("text", "visual")


@dataclass(frozen=True)
class PresenceSignals:
    """What the read-out knows about its chosen proposal, for the presence decision."""

    match: float
    void_margin: float
    mask_fraction: float

    def features(self) -> tuple[float, ...]:
        """The values of :data:`PRESENCE_FEATURES`, in that order."""
        return (self.match, self.void_margin, math.log(max(self.mask_fraction, MIN_MASK_FRACTION)))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


@dataclass(frozen=True)
class LogisticPresence:
    """P(in view) = sigmoid(weights · features + bias), features as :data:`PRESENCE_FEATURES`."""

    weights: tuple[float, ...]
    bias: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
        if len(self.weights) != len(PRESENCE_FEATURES):
            raise ValueError(f"presence weights: {len(self.weights)} given, {len(PRESENCE_FEATURES)} features "
                             f"({', '.join(PRESENCE_FEATURES)})")
        if not all(math.isfinite(w) for w in (*self.weights, self.bias)):
            raise ValueError("presence weights and bias must be finite")

    def probability(self, signals: PresenceSignals) -> float:
        return _sigmoid(sum(w * x for w, x in zip(self.weights, signals.features())) + self.bias)


@dataclass(frozen=True)
class PresenceSettings:
    """A model's presence decision: one logistic model per entity kind (None: the fallback) and
    the threshold on the probability above which an entity is ``found``."""

    text: LogisticPresence | None = None
    visual: LogisticPresence | None = None
    threshold: float = 0.5
    # How the numbers were fitted (command, seeds, figures): provenance only, never read back.
    calibration: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"presence threshold must be in (0, 1), got {self.threshold}")

    @property
    def calibrated(self) -> bool:
        return self.text is not None and self.visual is not None

    def confidence(self, signals: PresenceSignals, is_visual: bool) -> float:
        """Probability that the entity is in view."""
        model = self.visual if is_visual else self.text
        return model.probability(signals) if model is not None else _sigmoid(signals.void_margin)

    def found(self, confidence: float, threshold: float | None = None) -> bool:
        return confidence >= (self.threshold if threshold is None else threshold)

    def to_dict(self) -> dict[str, Any]:
        kinds = {k: {"weights": list(m.weights), "bias": m.bias} for k in KINDS if (m := getattr(self, k)) is not None}
        return {"features": list(PRESENCE_FEATURES), **kinds, "threshold": self.threshold,
                "calibration": self.calibration}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PresenceSettings:
        """Settings from a config's ``presence`` value; None or {} gives :data:`FALLBACK`."""
        if not data:
            return FALLBACK
        if not isinstance(data, dict):
            raise ValueError(f"presence: expected an object, got {type(data).__name__}")  # noqa: TRY004 - a config error
        unknown = sorted(set(data) - {"features", *KINDS, "threshold", "calibration"})
        if unknown:
            raise ValueError(f"presence: unknown keys {', '.join(unknown)}")
        if tuple(data.get("features", PRESENCE_FEATURES)) != PRESENCE_FEATURES:
            raise ValueError(f"presence: features {data['features']} are not this code's "
                             f"{list(PRESENCE_FEATURES)}; re-run python -m training.calibrate_presence")
        kinds = {}
        for kind in KINDS:
            part = data.get(kind)
            if part is not None:
                if not isinstance(part, dict) or set(part) != {"weights", "bias"}:
                    raise ValueError(f"presence.{kind}: expected {{'weights': [...], 'bias': ...}}")
                kinds[kind] = LogisticPresence(tuple(part["weights"]), float(part["bias"]))
        return cls(**kinds, threshold=float(data.get("threshold", 0.5)), calibration=dict(data.get("calibration", {})))


FALLBACK = PresenceSettings()
