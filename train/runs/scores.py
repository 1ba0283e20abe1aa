"""Scoring predictions: accuracy per class and per material, confusion matrices, intervals.

Pure functions of label lists (no lake, no network), shared by held-out evaluation, the k-fold
protocol and the MCD ensemble vote.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from train.errors import TrainingError


@dataclass
class Evaluation:
    """Scores of one run on one test set.

    Attributes
    ----------
    run_id
        The run.
    accuracy
        Fraction of patterns whose predicted label equals the true label.
    per_class, per_material
        Accuracy by true label value, and by material id (or target source).
    confusion
        int64 (R, C) counts: rows are true labels (``row_labels``), columns predicted labels
        (``classes``); true labels the run never saw get extra rows.
    n_patterns
        Patterns scored.
    seen_in_training
        Test materials the run was trained on (its score on them is not a held-out score).
    class_counts, material_counts
        Patterns scored per true label value and per material id (or target source).
    true_values, predicted_values, groups
        Per pattern: true label, prediction and material (not stored; for :func:`regrouped`).
    """

    run_id: str
    accuracy: float
    per_class: dict
    per_material: dict[str, float]
    classes: list
    row_labels: list
    confusion: np.ndarray = field(repr=False)
    n_patterns: int = 0
    seen_in_training: list[str] = field(default_factory=list)
    class_counts: dict = field(default_factory=dict)
    material_counts: dict[str, int] = field(default_factory=dict)
    true_values: list = field(default_factory=list, repr=False)
    predicted_values: list = field(default_factory=list, repr=False)
    groups: list[str] = field(default_factory=list, repr=False)

    def summary(self) -> dict:
        """JSON-ready summary (what ``evaluation.json`` holds)."""
        return {
            "run_id": self.run_id,
            "accuracy": self.accuracy,
            "n_patterns": self.n_patterns,
            "per_class": {str(k): v for k, v in self.per_class.items()},
            "per_material": self.per_material,
            "classes": self.classes,
            "row_labels": self.row_labels,
            "confusion": self.confusion.tolist(),
            "seen_in_training": list(self.seen_in_training),
            "class_counts": {str(k): v for k, v in self.class_counts.items()},
            "material_counts": dict(self.material_counts),
        }


def score(
    run_id: str, classes: list, true_values: list, predicted_values: list, groups: list[str]
) -> Evaluation:
    """Score predictions against true label values.

    Parameters
    ----------
    run_id
        Run name, carried into the result.
    classes
        The run's label values (prediction columns).
    true_values, predicted_values
        Label values per pattern.
    groups
        Material id (or target source) per pattern, for per-material accuracy.
    """
    if not (len(true_values) == len(predicted_values) == len(groups)):
        raise TrainingError(f"run {run_id!r}: predictions, labels and materials differ in length")
    if not true_values:
        raise TrainingError(f"run {run_id!r}: no labelled test patterns to evaluate")
    hits = [t == p for t, p in zip(true_values, predicted_values, strict=True)]
    unseen = sorted({t for t in true_values if t not in classes}, key=str)
    row_labels = list(classes) + unseen
    rows = {value: i for i, value in enumerate(row_labels)}
    cols = {value: i for i, value in enumerate(classes)}
    confusion = np.zeros((len(row_labels), len(classes)), dtype=np.int64)
    for t, p in zip(true_values, predicted_values, strict=True):
        confusion[rows[t], cols[p]] += 1
    return Evaluation(
        run_id=run_id,
        accuracy=float(np.mean(hits)),
        per_class=_grouped_mean(true_values, hits),
        per_material=_grouped_mean(groups, hits),
        classes=list(classes),
        row_labels=row_labels,
        confusion=confusion,
        n_patterns=len(hits),
        class_counts=_counts(true_values),
        material_counts=_counts(groups),
        true_values=list(true_values),
        predicted_values=list(predicted_values),
        groups=list(groups),
    )


def regrouped(evaluation: Evaluation, coarser: Callable[[Any], Any], classes: list) -> Evaluation:
    """The same predictions scored at a coarser label: each true and predicted value mapped by
    ``coarser`` (a Laue class to its crystal system, say), ``classes`` the coarse values. A call
    is right when it lands in the right coarse class even if the fine class was wrong."""
    if not evaluation.true_values:
        raise TrainingError(f"run {evaluation.run_id!r}: the evaluation kept no per-pattern calls")
    return score(
        evaluation.run_id,
        list(classes),
        [coarser(value) for value in evaluation.true_values],
        [coarser(value) for value in evaluation.predicted_values],
        list(evaluation.groups),
    )


def _counts(keys: list) -> dict:
    """How many times each key occurs, keys in sorted order."""
    totals: dict = defaultdict(int)
    for key in keys:
        totals[key] += 1
    return {k: totals[k] for k in sorted(totals, key=str)}


def _grouped_mean(keys: list, hits: list[bool]) -> dict:
    """Mean of ``hits`` per key, keys in sorted order."""
    totals: dict = defaultdict(lambda: [0, 0])
    for key, hit in zip(keys, hits, strict=True):
        totals[key][0] += int(hit)
        totals[key][1] += 1
    return {k: totals[k][0] / totals[k][1] for k in sorted(totals, key=str)}


def mean_interval(values: list[float], level: float = 0.95) -> dict[str, float]:
    """Mean and two-sided Student-t confidence interval of ``values`` (runs or folds).

    Returns ``{"mean", "low", "high", "n"}``; with one value the interval is the value itself.
    """
    from scipy import stats

    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise TrainingError("mean interval: no values")
    mean = float(data.mean())
    if data.size == 1:
        return {"mean": mean, "low": mean, "high": mean, "n": 1}
    half = float(
        stats.t.ppf(0.5 + level / 2, data.size - 1) * data.std(ddof=1) / math.sqrt(data.size)
    )
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": int(data.size)}


def table_csv(header: tuple[str, str], values: dict) -> bytes:
    """Two-column CSV bytes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for key, value in values.items():
        writer.writerow([key, f"{value:.6f}"])
    return buffer.getvalue().encode()


def confusion_csv(evaluation: Evaluation) -> bytes:
    """Confusion matrix as CSV: first column the true label, one column per predicted label."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["true\\predicted", *evaluation.classes])
    for label, row in zip(evaluation.row_labels, evaluation.confusion, strict=True):
        writer.writerow([label, *row.tolist()])
    return buffer.getvalue().encode()


def confusion_png(evaluation: Evaluation) -> bytes:
    """Row-normalised confusion matrix as PNG bytes (counts annotated when small)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    counts = evaluation.confusion
    fractions = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    size = 2.5 + 0.45 * max(counts.shape)
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(evaluation.classes)), [str(c) for c in evaluation.classes], rotation=90)
    ax.set_yticks(range(len(evaluation.row_labels)), [str(c) for c in evaluation.row_labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{evaluation.run_id}: accuracy {evaluation.accuracy:.3f}")
    if counts.shape[0] * counts.shape[1] <= 400:
        for (i, j), count in np.ndenumerate(counts):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
