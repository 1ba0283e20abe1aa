"""Evaluation of trained runs on held-out materials, and training curves.

Supervised runs are scored on their held-out materials (``test_ids`` in ``config.json``) with
patterns projected the way the run reads them (its ``reading.json``: detector, input size,
pre-processing; no augmentation, a seed distinct from training). MCD runs are scored on their
labelled target patterns (``target_predictions.json``). Outputs go to the run folder:
``evaluation.json``, ``per_class.csv``, ``per_material.csv``, ``confusion.csv``,
``confusion.png``.
"""

from __future__ import annotations

import io
import math

from train.errors import TrainingError
from train.patterns.materials import check_materials
from train.patterns.stream import PatternStream
from train.run_config import EVALUATION_SEED_OFFSET
from train.runs.inference import LoadedRun, load_run
from train.runs.mcd_ensemble import target_predictions
from train.runs.run import EVALUATION_FILE, TRAINING_CURVE_FILE, Run, open_lake
from train.runs.scores import (
    Evaluation,
    confusion_csv,
    confusion_png,
    mean_interval,
    score,
    table_csv,
)


def _stream_predictions(
    loaded: LoadedRun, lake_url: str, storage_options: dict | None, test_ids: list[str],
    per_material: int,
) -> tuple[list, list, list[str]]:  # fmt: skip
    """Project held-out materials the way the run reads patterns and predict them."""
    settings = loaded.settings
    stream_config = loaded.reading.stream_config(
        batch_size=int(settings.get("batch_size", 128)),
        seed=int(settings.get("seed", 0)) + EVALUATION_SEED_OFFSET,
        energy=settings.get("energy", "weighted"),
        variants=tuple(settings.get("variants") or ("default",)),
        device=str(settings.get("stream_device", "cpu")),
    )
    stream = PatternStream(lake_url, storage_options, list(test_ids), stream_config)
    total = len(test_ids) * per_material
    steps = max(1, math.ceil(total / stream_config.batch_size))
    true_values, predicted, groups = [], [], []
    for patterns, labels, mids in stream.batches(epoch=0, rank=0, world_size=1, steps=steps):
        keep = total - len(predicted)
        patterns, labels, mids = patterns[:keep], labels[:keep], list(mids)[:keep]
        indices = loaded.probabilities(patterns).argmax(1).tolist()
        predicted += [loaded.classes[i] for i in indices]
        true_values += [stream.classes[i] for i in labels.tolist()]
        groups += list(mids)
    return true_values, predicted, groups


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
    """
    if patterns_per_material < 1:
        raise TrainingError(f"--patterns-per-material {patterns_per_material}: must be >= 1")
    lake = open_lake(lake_url, storage_options, mode="a")
    loaded = load_run(lake, run_id)
    ids = list(test_ids) if test_ids else list(loaded.config.get("test_ids") or [])
    if ids:
        variants = tuple(loaded.settings.get("variants") or ("default",))
        option = "--test-ids" if test_ids else f"run {run_id!r} test_ids"
        check_materials(lake, ids, variants, option)
        true_values, predicted, groups = _stream_predictions(
            loaded, lake_url, storage_options, ids, patterns_per_material
        )
    elif loaded.kind == "mcd":
        table = target_predictions(lake, run_id)
        keep = [i for i, label in enumerate(table["labels"]) if label is not None]
        true_values = [table["labels"][i] for i in keep]
        predicted = [table["predicted"][i] for i in keep]
        groups = [table["sources"][i] for i in keep]
    else:
        raise TrainingError(f"run {run_id!r}: no held-out test materials; pass --test-ids")
    evaluation = score(run_id, loaded.classes, true_values, predicted, groups)
    trained = set(loaded.config.get("train_ids") or [])
    evaluation.seen_in_training = [m for m in ids if m in trained]
    write_evaluation(Run(lake, run_id), evaluation)
    return evaluation


def write_evaluation(run: Run, evaluation: Evaluation) -> None:
    """Write ``evaluation.json``, the CSV tables and ``confusion.png`` to the run folder."""
    run.put_json(EVALUATION_FILE, evaluation.summary())
    run.put_bytes("confusion.csv", confusion_csv(evaluation))
    run.put_bytes("per_class.csv", table_csv(("label", "accuracy"), evaluation.per_class))
    run.put_bytes(
        "per_material.csv", table_csv(("material_id", "accuracy"), evaluation.per_material)
    )
    run.put_bytes("confusion.png", confusion_png(evaluation))


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


def training_curve_png(lake_url: str, storage_options: dict | None, run_id: str) -> bytes:
    """Plot a run's per-epoch loss and accuracies, store it as ``training_curve.png``, return it."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    run = Run(open_lake(lake_url, storage_options, mode="a"), run_id).require()
    history = run.history()
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
    run.put_bytes(TRAINING_CURVE_FILE, png)
    return png
