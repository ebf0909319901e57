"""Presence: is a grounded entity in view at all? A calibrated probability and a yes/no.

The match read-out always picks *some* proposal, so its mask alone cannot say "not here". Signals
of the chosen proposal (:class:`PresenceSignals`, measured on present and absent frames of
walk-through bags; ``python -m training.calibrate_presence`` prints each one's AUROC) do:

* ``match``: its matching logit (scaled cosine) — comparable across frames of one instruction, but
  each instruction, and text against visual entities, sits at its own level;
* ``target_void``: the target's own logit for "no object" — that level, known from the instruction
  alone, so one model can place every instruction;
* ``void_margin``: the match minus the proposal's "no object" logit (Mask2Former's void class);
* ``mean_margin`` / ``runner_up_margin`` / ``others_margin``: the match minus the mean, the best,
  the logsumexp of the frame's other proposals' logits for the same target (per-frame normalised);
* ``mask_fraction`` (as its logarithm) and ``mask_probability``: its mask's share of the frame and
  mean probability, the latter over the mask's positive cells at the model's stride 4 (a proposal
  matched for want of a better one tends to cover little, faintly).

A logistic model per entity kind (text, visual) on the features the settings name
(:data:`DEFAULT_FEATURES` unless a calibration chose others) maps them to the probability of being
in view; the same threshold decides ``found`` for both, so confidences compare across frames and
instructions. The fitted numbers and the feature names live in the model's ``config.json`` under
the key ``presence`` (:meth:`PresenceSettings.to_dict`), so each model carries its own. A model
without them uses the fallback :data:`FALLBACK`: the probability of the entity against "no object"
for the chosen proposal, ``sigmoid(void_margin)``, at threshold 0.5 — the model's own two-way
decision, uncalibrated.

Plain math: this module imports no torch (results carry its signals).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

MIN_MASK_FRACTION = 1e-4  # an empty mask counts as this small, so its logarithm stays finite
KINDS = ("text", "visual")


@dataclass(frozen=True)
class PresenceSignals:
    """What the read-out knows about its chosen proposal, for the presence decision. The first three
    are the chosen proposal's own; the rest compare it with the frame's other proposals for the
    same target, or place the target itself, so that they read alike across instructions."""

    match: float
    void_margin: float
    mask_fraction: float
    runner_up_margin: float = 0.0   # match minus the best other proposal's logit (0: no other)
    others_margin: float = 0.0      # match minus the logsumexp of the other proposals' logits
    mean_margin: float = 0.0        # match minus the mean of the other proposals' logits
    mask_probability: float = 0.0   # mean probability of the chosen mask's positive stride-4 cells (0: empty)
    target_void: float = 0.0        # the target's own logit for "no object": an instruction's level

    def feature(self, name: str) -> float:
        """The value of the presence feature ``name`` (one of :data:`PRESENCE_FEATURES`)."""
        if name == "log_mask_fraction":
            return math.log(max(self.mask_fraction, MIN_MASK_FRACTION))
        if name not in PRESENCE_FEATURES:
            raise ValueError(f"unknown presence feature {name!r}; known: {', '.join(PRESENCE_FEATURES)}")
        return float(getattr(self, name))

    def features(self, names: tuple[str, ...] | None = None) -> tuple[float, ...]:
        """The values of the features ``names`` (default :data:`DEFAULT_FEATURES`), in that order."""
        return tuple(self.feature(n) for n in (DEFAULT_FEATURES if names is None else names))


# Every feature a presence model may name: the signals above, the mask share as its logarithm.
PRESENCE_FEATURES = ("match", "void_margin", "log_mask_fraction", "runner_up_margin", "others_margin",
                     "mean_margin", "mask_probability", "target_void")
# What the first calibration used (a config without "features" was fitted on these).
LEGACY_FEATURES = ("match", "void_margin", "log_mask_fraction")
# What a calibration fits by default: every signal. target_void places each instruction (an
# instruction-level offset: alone it says nothing, AUROC 0.48); the margins compare the chosen
# proposal with the frame's others and mask_probability grades its mask. On the first default model
# mean_margin and mask_probability lifted held-out text AUROC from 0.897 to 0.917; on the relational
# one the two rival margins lifted held-out crop AUROC from 0.895 to 0.908 (issue 18).
DEFAULT_FEATURES = PRESENCE_FEATURES


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


@dataclass(frozen=True)
class LogisticPresence:
    """P(in view) = sigmoid(weights · features + bias), the features those its settings name."""

    weights: tuple[float, ...]
    bias: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
        if not all(math.isfinite(w) for w in (*self.weights, self.bias)):
            raise ValueError("presence weights and bias must be finite")

    def probability(self, features: tuple[float, ...]) -> float:
        return _sigmoid(sum(w * x for w, x in zip(self.weights, features, strict=True)) + self.bias)


@dataclass(frozen=True)
class PresenceSettings:
    """A model's presence decision: the features it reads (by name, :data:`PRESENCE_FEATURES`), one
    logistic model per entity kind on them (None: the fallback) and the threshold on the probability
    above which an entity is ``found``."""

    text: LogisticPresence | None = None
    visual: LogisticPresence | None = None
    threshold: float = 0.5
    # How the numbers were fitted (command, seeds, figures): provenance only, never read back.
    calibration: dict[str, Any] = field(default_factory=dict)
    features: tuple[str, ...] = DEFAULT_FEATURES

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"presence threshold must be in (0, 1), got {self.threshold}")
        unknown = [n for n in self.features if n not in PRESENCE_FEATURES]
        if unknown or not self.features or len(set(self.features)) != len(self.features):
            raise ValueError(f"presence features {list(self.features)}: give distinct names of "
                             f"{', '.join(PRESENCE_FEATURES)}; re-run python -m training.calibrate_presence")
        for kind in KINDS:
            model = getattr(self, kind)
            if model is not None and len(model.weights) != len(self.features):
                raise ValueError(f"presence.{kind}: {len(model.weights)} weights given, {len(self.features)} features "
                                 f"({', '.join(self.features)})")

    @property
    def calibrated(self) -> bool:
        return self.text is not None and self.visual is not None

    def confidence(self, signals: PresenceSignals, is_visual: bool) -> float:
        """Probability that the entity is in view."""
        model = self.visual if is_visual else self.text
        return model.probability(signals.features(self.features)) if model is not None else _sigmoid(signals.void_margin)

    def found(self, confidence: float, threshold: float | None = None) -> bool:
        return confidence >= (self.threshold if threshold is None else threshold)

    def to_dict(self) -> dict[str, Any]:
        kinds = {k: {"weights": list(m.weights), "bias": m.bias} for k in KINDS if (m := getattr(self, k)) is not None}
        return {"features": list(self.features), **kinds, "threshold": self.threshold, "calibration": self.calibration}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PresenceSettings:
        """Settings from a config's ``presence`` value; None or {} gives :data:`FALLBACK`, no
        ``features`` the :data:`LEGACY_FEATURES` the first calibrations were fitted on."""
        if not data:
            return FALLBACK
        if not isinstance(data, dict):
            raise ValueError(f"presence: expected an object, got {type(data).__name__}")  # noqa: TRY004 - a config error
        unknown = sorted(set(data) - {"features", *KINDS, "threshold", "calibration"})
        if unknown:
            raise ValueError(f"presence: unknown keys {', '.join(unknown)}")
        features = data.get("features", LEGACY_FEATURES)
        if not isinstance(features, list | tuple) or not all(isinstance(n, str) for n in features):
            raise ValueError(f"presence.features: expected a list of names, got {features!r}")
        kinds = {}
        for kind in KINDS:
            part = data.get(kind)
            if part is not None:
                if not isinstance(part, dict) or set(part) != {"weights", "bias"}:
                    raise ValueError(f"presence.{kind}: expected {{'weights': [...], 'bias': ...}}")
                kinds[kind] = LogisticPresence(tuple(part["weights"]), float(part["bias"]))
        return cls(**kinds, threshold=float(data.get("threshold", 0.5)), calibration=dict(data.get("calibration", {})),
                   features=tuple(features))


FALLBACK = PresenceSettings()
