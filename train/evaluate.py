"""Evaluation of trained runs: accuracy, per-class and per-material accuracy, confusion matrix,
mean and 95 % interval over runs, ensemble voting, and training curves.

Supervised runs are scored on their held-out materials (``test_ids`` in ``config.json``) with
patterns projected by the stream (no augmentation, a seed distinct from training). MCD runs are
scored on their labelled target patterns (``target_predictions.json``). Outputs are written to the
run folder: ``evaluation.json``, ``per_class.csv``, ``per_material.csv``, ``confusion.csv``,
``confusion.png``.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from train.runs import METRICS_FILE, get_json, open_lake, put_json
from train.training_errors import TrainingError

EVALUATION_FILE = "evaluation.json"


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
    )


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


def _stream_predictions(loaded, lake_url, storage_options, test_ids, per_material):
    """Project held-out materials with the run's stream settings and predict them."""
    from train.mcd import MCDConfig
    from train.stream import PatternStream
    from train.supervised import SupervisedConfig, stream_config_for

    config = run_settings(loaded, MCDConfig if loaded.kind == "mcd" else SupervisedConfig)
    stream = PatternStream(
        lake_url, storage_options, list(test_ids), stream_config_for(config, False)
    )
    total = len(test_ids) * per_material
    steps = max(1, math.ceil(total / config.batch_size))
    true_values, predicted, groups = [], [], []
    for patterns, labels, mids in stream.batches(epoch=0, rank=0, world_size=1, steps=steps):
        keep = total - len(predicted)
        patterns, labels, mids = patterns[:keep], labels[:keep], list(mids)[:keep]
        indices = loaded.probabilities(patterns).argmax(1).tolist()
        predicted += [loaded.classes[i] for i in indices]
        true_values += [stream.classes[i] for i in labels.tolist()]
        groups += list(mids)
    return true_values, predicted, groups


def run_settings(loaded, config_class):
    """The run's training settings as ``config_class``; a stored config that does not fit
    (another version, a hand-edited file) is a :class:`TrainingError` naming the run."""
    settings = dict(loaded.settings)
    try:
        settings["detector_shape"] = tuple(settings["detector_shape"])
        settings["variants"] = tuple(settings["variants"])
        return config_class(**settings)
    except (KeyError, TypeError) as exc:
        raise TrainingError(
            f"run {loaded.run_id!r}: config.json 'config' does not fit {config_class.__name__} "
            f"({exc})"
        ) from None


def evaluate_run(
    lake_url: str,
    storage_options: dict | None,
    run_id: str,
    test_ids: list[str] | None = None,
    patterns_per_material: int = 100,
) -> Evaluation:
    """Evaluate a run and write its evaluation files into the run folder.

    Parameters
    ----------
    lake_url, storage_options
        The lake holding the run (and the test materials' masters).
    run_id
        The run to evaluate.
    test_ids
        Materials to test on; default the run's held-out ``test_ids``. MCD runs without test
        materials are scored on their labelled target patterns. Materials the run trained on
        are scored too, and listed in ``Evaluation.seen_in_training``.
    patterns_per_material
        Projections per test material (paper: 100).

    Returns
    -------
    Evaluation
    """
    from train.protocol import check_materials
    from train.run_models import load_run

    if patterns_per_material < 1:
        raise TrainingError(f"--patterns-per-material {patterns_per_material}: must be >= 1")
    lake = open_lake(lake_url, storage_options, mode="a")
    loaded = load_run(lake, run_id)
    ids = list(test_ids) if test_ids else list(loaded.config.get("test_ids") or [])
    if ids:
        variants = tuple(loaded.settings.get("variants") or ("default",))
        check_materials(
            lake, ids, variants, "--test-ids" if test_ids else f"run {run_id!r} test_ids"
        )
        true_values, predicted, groups = _stream_predictions(
            loaded, lake_url, storage_options, ids, patterns_per_material
        )
    elif loaded.kind == "mcd":
        table = _target_predictions(lake, run_id)
        keep = [i for i, label in enumerate(table["labels"]) if label is not None]
        true_values = [table["labels"][i] for i in keep]
        predicted = [table["predicted"][i] for i in keep]
        groups = [table["sources"][i] for i in keep]
    else:
        raise TrainingError(f"run {run_id!r}: no held-out test materials; pass --test-ids")
    evaluation = score(run_id, loaded.classes, true_values, predicted, groups)
    trained = set(loaded.config.get("train_ids") or [])
    evaluation.seen_in_training = [m for m in ids if m in trained]
    write_evaluation(lake, evaluation)
    return evaluation


def write_evaluation(lake, evaluation: Evaluation) -> None:
    """Write ``evaluation.json``, the CSV tables and ``confusion.png`` to the run folder."""
    run_id = evaluation.run_id
    put_json(lake, run_id, EVALUATION_FILE, evaluation.summary())
    lake.put_run_file(run_id, "confusion.csv", confusion_csv(evaluation))
    lake.put_run_file(
        run_id, "per_class.csv", _table_csv(("label", "accuracy"), evaluation.per_class)
    )
    lake.put_run_file(
        run_id, "per_material.csv", _table_csv(("material_id", "accuracy"), evaluation.per_material)
    )
    lake.put_run_file(run_id, "confusion.png", confusion_png(evaluation))


def _table_csv(header: tuple[str, str], values: dict) -> bytes:
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


def evaluate_runs(
    lake_url: str,
    storage_options: dict | None,
    run_ids: list[str],
    patterns_per_material: int = 100,
) -> dict:
    """Evaluate several runs (folds, seeds) and summarise accuracy as mean and 95 % interval.

    Returns
    -------
    dict
        ``{"runs": {run_id: accuracy}, "accuracy": mean_interval(...)}``.
    """
    if not run_ids:
        raise TrainingError("evaluate: no runs given")
    accuracies = {
        run: evaluate_run(lake_url, storage_options, run, None, patterns_per_material).accuracy
        for run in run_ids
    }
    return {"runs": accuracies, "accuracy": mean_interval(list(accuracies.values()))}


def ensemble_vote(lake_url: str, storage_options: dict | None, run_ids: list[str]) -> dict:
    """Majority vote of MCD runs on their shared labelled target patterns (the paper's ensemble).

    Returns
    -------
    dict
        ``accuracy`` (voted, overall), ``per_material`` (voted, per target source),
        ``run_accuracy`` (mean and 95 % interval of the single runs).
    """
    lake = open_lake(lake_url, storage_options)
    if not run_ids:
        raise TrainingError("ensemble vote: no runs given")
    tables = [_target_predictions(lake, run) for run in run_ids]
    labels, sources = tables[0]["labels"], tables[0]["sources"]
    if any(t["labels"] != labels or t["sources"] != sources for t in tables[1:]):
        raise TrainingError(f"ensemble vote: runs {run_ids} were not scored on one target set")
    keep = [i for i, label in enumerate(labels) if label is not None]
    if not keep:
        raise TrainingError("ensemble vote: the target patterns carry no labels")
    votes = [Counter(t["predicted"][i] for t in tables).most_common(1)[0][0] for i in keep]
    truth = [labels[i] for i in keep]
    groups = [sources[i] for i in keep]
    voted = score("ensemble", sorted(set(votes) | set(truth), key=str), truth, votes, groups)
    singles = [np.mean([t["predicted"][i] == labels[i] for i in keep]) for t in tables]
    return {
        "accuracy": voted.accuracy,
        "per_material": voted.per_material,
        "run_accuracy": mean_interval([float(s) for s in singles]),
        "runs": list(run_ids),
    }


def _target_predictions(lake, run_id: str) -> dict:
    """An MCD run's ``target_predictions.json``; a missing, supervised or unfinished run is a
    :class:`TrainingError` saying which."""
    from train.mcd import TARGET_PREDICTIONS_FILE
    from train.runs import CONFIG_FILE, has_run_file, require_run

    require_run(lake, run_id)
    config = get_json(lake, run_id, CONFIG_FILE)
    kind = config.get("kind", "supervised") if isinstance(config, dict) else None
    if kind != "mcd":
        raise TrainingError(
            f"run {run_id!r} is a {kind or 'unknown'} run, not an MCD ensemble run "
            "(evaluate it without --ensemble)"
        )
    if not has_run_file(lake, run_id, TARGET_PREDICTIONS_FILE):
        raise TrainingError(f"run {run_id!r}: unfinished MCD run (no {TARGET_PREDICTIONS_FILE})")
    table = get_json(lake, run_id, TARGET_PREDICTIONS_FILE)
    if not isinstance(table, dict) or not {"labels", "sources", "predicted"} <= set(table):
        raise TrainingError(f"run {run_id!r}: {TARGET_PREDICTIONS_FILE} lacks its columns")
    return table


def training_curve_png(lake_url: str, storage_options: dict | None, run_id: str) -> bytes:
    """Plot a run's per-epoch loss and accuracies, store it as ``training_curve.png``, return it."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    lake = open_lake(lake_url, storage_options, mode="a")
    history = get_json(lake, run_id, METRICS_FILE)["history"]
    if not history:
        raise TrainingError(f"run {run_id!r}: metrics.json has no epochs")
    epochs = [h["epoch"] + 1 for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    for key in ("loss", "source_ce", "heads_loss", "discrepancy"):
        if key in history[0]:
            left.plot(epochs, [h[key] for h in history], marker="o", label=key)
    left.set_xlabel("epoch")
    left.set_title("losses")
    left.legend()
    for key in ("train_accuracy", "val_accuracy"):
        if key in history[0]:
            right.plot(epochs, [h[key] for h in history], marker="o", label=key)
    right.set_xlabel("epoch")
    right.set_ylim(0, 1)
    right.set_title("accuracy")
    if right.lines:
        right.legend()
    fig.suptitle(run_id)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    png = buffer.getvalue()
    lake.put_run_file(run_id, "training_curve.png", png)
    return png
