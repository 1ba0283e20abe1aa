"""Calibrated probabilities and the "uncertain" verdict: temperature scaling of a run's outputs.

A run's network outputs class probabilities p (a softmax, or the mean of MCD's two heads).
Temperature scaling (Guo et al. 2017) replaces them by ``softmax(log(p) / T)``: for a softmax
classifier exactly ``softmax(logits / T)``. One scalar ``T`` is fitted by minimising the negative
log-likelihood on held-out simulated patterns; it never changes which class is called, so
accuracies are unaffected. A call is *confident* when its calibrated top probability reaches
the run's threshold, else *uncertain*.

Threshold rule (:func:`choose_threshold`): the smallest threshold whose confident calls on the
calibration set reach :data:`TARGET_PRECISION` (fraction correct among confident calls), and
never below :data:`MIN_THRESHOLD`; when no threshold does, 1.0 (every call uncertain) and
``target_reached`` false. A run without
``calibration.json`` uses ``T = 1`` and :data:`DEFAULT_THRESHOLD`, and says it is uncalibrated.

Whatever the probabilities, a pattern without band structure is *uncertain*: image quality Q
(Krieger Lassen, of the raw pattern) below :data:`MIN_IMAGE_QUALITY`. Random noise sits at
Q = 0.000 +- 0.005; kikuchipy's real Ni scan at 0.52 (raw), 0.16-0.20 background-corrected.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from train.errors import TrainingError
from train.patterns.label_scope import OUTSIDE

CALIBRATION_FORMAT = 1
ECE_BINS = 15
TARGET_PRECISION = 0.9
"""Fraction of confident calls that must be right on the calibration set."""
MIN_THRESHOLD = 0.5
"""Lowest threshold: a confident call is more probable than all the other classes together. A
model that is right on nearly every simulated pattern would otherwise get a threshold near its
lowest top probability (0.30 for five classes), and call everything confidently, whatever
real or out-of-class patterns it meets: such a build called 100 % of simulated Mg and rutile and
4 of 9 real Ni patterns per file confidently wrong (docs/RESULTS.md)."""
DEFAULT_THRESHOLD = 0.9
"""Threshold on the (uncalibrated) top probability of a run without ``calibration.json``."""
VERDICTS = ("confident", "uncertain", "outside")
"""A call the model is sure of; one it is not (or a pattern without bands); and, for a model
with a learnt ``outside`` class (a scoped label), a confident call of that class: "none of these
classes", which is a finding about the phase, not a call of one."""
MIN_IMAGE_QUALITY = 0.02
"""Image quality Q (raw pattern) below which a call is uncertain: no bands to classify."""


@dataclass(frozen=True)
class Calibration:
    """A run's fitted temperature, its effect and its uncertainty threshold.

    Attributes
    ----------
    temperature
        ``T`` > 0 (dimensionless); > 1 softens over-confident outputs.
    threshold
        Calibrated top probability at and above which a call is confident.
    rule
        How the threshold was chosen (text).
    target_precision
        Precision the rule aimed for; ``target_reached`` whether any threshold met it.
    ece_before, ece_after
        Expected calibration error (15 equal-width bins) on the fit set, before and after.
    check_ece_before, check_ece_after
        The same on the check materials (held-out from the fit; None when too few materials).
    fit_materials, check_materials
        Material ids (grouped: no material in both) and ``n_patterns`` fitted on.
    coverage, precision
        Share of fit-set calls that are confident, and the fraction of those that are right.
    """

    temperature: float
    threshold: float
    rule: str = ""
    target_precision: float = TARGET_PRECISION
    target_reached: bool = True
    ece_before: float | None = None
    ece_after: float | None = None
    check_ece_before: float | None = None
    check_ece_after: float | None = None
    fit_materials: list[str] = field(default_factory=list)
    check_materials: list[str] = field(default_factory=list)
    n_patterns: int = 0
    coverage: float | None = None
    precision: float | None = None

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (N, C) of raw ones: ``softmax(log(p) / T)``."""
        return temperature_scaled(probabilities, self.temperature)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``calibration.json`` holds)."""
        return {"format": CALIBRATION_FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Any, where: str = "calibration.json") -> Calibration:
        """Rebuild from :meth:`to_dict`'s form; a :class:`TrainingError` naming a bad field."""
        if not isinstance(data, dict):
            raise TrainingError(f"{where}: not a JSON object")
        if data.get("format", CALIBRATION_FORMAT) > CALIBRATION_FORMAT:
            raise TrainingError(f"{where}: format {data['format']} is newer than this ebsdlake")
        for key in ("temperature", "threshold"):
            value = data.get(key)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise TrainingError(f"{where}: lacks a number {key!r}")
        if data["temperature"] <= 0 or not 0 <= data["threshold"] <= 1:
            raise TrainingError(f"{where}: temperature must be > 0 and threshold in [0, 1]")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def temperature_scaled(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(p) / T)`` row by row, float32 (N, C); exact for a softmax classifier."""
    logp = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, None))
    scaled = logp / temperature
    scaled -= scaled.max(1, keepdims=True)
    out = np.exp(scaled)
    return (out / out.sum(1, keepdims=True)).astype(np.float32)


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
) -> float:
    """ECE: bin patterns by top probability (``bins`` equal widths on [0, 1]) and average
    |accuracy - mean confidence| over bins, weighted by the share of patterns in each."""
    probabilities = np.asarray(probabilities)
    if len(probabilities) == 0:
        raise TrainingError("calibration: no patterns to score")
    confidence = probabilities.max(1)
    correct = probabilities.argmax(1) == np.asarray(labels)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The ``T`` minimising the mean negative log-likelihood of ``labels`` (bounded search of
    log T over [1/100, 100])."""
    from scipy.optimize import minimize_scalar

    labels = np.asarray(labels, dtype=int)
    logp = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, None))

    def nll(log_t: float) -> float:
        scaled = logp / math.exp(log_t)
        peak = scaled.max(1, keepdims=True)
        norm = peak[:, 0] + np.log(np.exp(scaled - peak).sum(1))
        return float(np.mean(norm - scaled[np.arange(len(labels)), labels]))

    found = minimize_scalar(nll, bounds=(-math.log(100), math.log(100)), method="bounded")
    return float(math.exp(found.x))


def choose_threshold(
    probabilities: np.ndarray,
    labels: np.ndarray,
    target: float = TARGET_PRECISION,
    floor: float = MIN_THRESHOLD,
) -> tuple[float, bool]:
    """The smallest top-probability threshold whose confident calls reach precision ``target``,
    raised to ``floor`` (``(threshold, True)``), else ``(1.0, False)``."""
    confidence = np.asarray(probabilities).max(1)
    correct = np.asarray(probabilities).argmax(1) == np.asarray(labels)
    order = np.argsort(-confidence, kind="stable")
    precision = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    # a threshold t keeps every call with confidence >= t: candidate cut after each tie group
    last_of_ties = np.r_[confidence[order][1:] < confidence[order][:-1], True]
    reached = np.flatnonzero(last_of_ties & (precision >= target))
    if reached.size == 0:
        return 1.0, False
    return max(float(confidence[order][reached[-1]]), floor), True


def calibrate(
    probabilities: np.ndarray,
    labels: np.ndarray,
    groups: list[str],
    target: float = TARGET_PRECISION,
) -> Calibration:
    """Fit ``T`` and the threshold on held-out simulated patterns, grouped by material.

    With four or more materials, every other material (in sorted order) is kept out of the fit
    as a check set, so ``check_ece_*`` shows the effect on materials the fit never saw.
    """
    probabilities, labels = np.asarray(probabilities), np.asarray(labels, dtype=int)
    materials = sorted(set(groups))
    check = materials[1::2] if len(materials) >= 4 else []
    fit_mask = np.array([g not in check for g in groups])
    fit_p, fit_y = probabilities[fit_mask], labels[fit_mask]
    temperature = fit_temperature(fit_p, fit_y)
    calibrated = temperature_scaled(fit_p, temperature)
    threshold, reached = choose_threshold(calibrated, fit_y, target)
    confident = calibrated.max(1) >= threshold
    hits = calibrated.argmax(1) == fit_y
    result = {
        "temperature": temperature,
        "threshold": threshold,
        "rule": (
            f"smallest calibrated top probability whose confident calls on the fit set are "
            f">= {target:.2f} correct, at least {MIN_THRESHOLD} (1.0 when none)"
        ),
        "target_precision": target,
        "target_reached": reached,
        "ece_before": expected_calibration_error(fit_p, fit_y),
        "ece_after": expected_calibration_error(calibrated, fit_y),
        "fit_materials": [m for m in materials if m not in check],
        "check_materials": check,
        "n_patterns": int(fit_mask.sum()),
        "coverage": float(confident.mean()),
        "precision": float(hits[confident].mean()) if confident.any() else None,
    }
    if check:
        check_p, check_y = probabilities[~fit_mask], labels[~fit_mask]
        result["check_ece_before"] = expected_calibration_error(check_p, check_y)
        result["check_ece_after"] = expected_calibration_error(
            temperature_scaled(check_p, temperature), check_y
        )
    return Calibration(**result)


def verdicts(
    probabilities: np.ndarray,
    threshold: float,
    quality: np.ndarray | None = None,
    outside: np.ndarray | None = None,
    classes: list | None = None,
) -> list[str]:
    """``"confident"`` where the top probability reaches ``threshold`` (and the image quality,
    when given, reaches :data:`MIN_IMAGE_QUALITY`, and a gate, when given, does not put the
    pattern ``outside`` the classes), else ``"uncertain"``; with ``classes`` that include the
    learnt class ``outside``, a confident call of it is ``"outside"``."""
    probabilities = np.asarray(probabilities)
    confident = probabilities.max(1) >= threshold
    if quality is not None:
        confident &= np.asarray(quality) >= MIN_IMAGE_QUALITY
    if outside is not None:
        confident &= ~np.asarray(outside, dtype=bool)
    learnt = list(classes).index(OUTSIDE) if classes is not None and OUTSIDE in classes else -1
    called_outside = probabilities.argmax(1) == learnt  # never, without a learnt class
    return [
        VERDICTS[2] if c and o else VERDICTS[0] if c else VERDICTS[1]
        for c, o in zip(confident, called_outside, strict=True)
    ]
