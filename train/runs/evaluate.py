"""Evaluation of trained runs on held-out materials, and training curves.

Supervised runs are scored on their held-out materials (``test_ids`` in ``config.json``) with
patterns projected the way the run reads them (its ``reading.json``: detector, input size,
pre-processing; no augmentation, a seed distinct from training), exactly
``patterns_per_material`` patterns of each material. MCD runs are scored on their labelled
target patterns (``target_predictions.json``).

A run has one *own* evaluation: its held-out materials at the patterns per material its protocol
evaluated it with (``train``'s protocol, ``model build`` and ``make demo`` evaluate a run right
after training it; a run never evaluated takes its first evaluation on its held-out materials,
100 patterns per material unless told otherwise). It is stored as ``evaluation.json``,
``per_class.csv``, ``per_material.csv``, ``confusion.csv`` and ``confusion.png`` in the run
folder, with its settings, and nothing else writes those files. An evaluation with other
settings is stored beside it, named by them: ``evaluation-ppm4.json``, ``confusion-ppm4.png``...
for 4 patterns per material, ``evaluation-ids-<hash>-ppm100.json``... for other materials
(``<hash>``: 8 hex digits of the sorted ids' SHA-1; the ids are in the file).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from train.errors import TrainingError
from train.patterns.materials import check_materials
from train.run_config import EVALUATION_SEED_OFFSET
from train.runs.held_out import held_out_batches
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

DEFAULT_PATTERNS_PER_MATERIAL = 100
"""Patterns per held-out material of a run's own evaluation unless its protocol chose another
number (the paper's, and ``run_protocol``'s default)."""


@dataclass(frozen=True)
class EvaluationSettings:
    """What one evaluation scores: the test materials and the patterns per material.

    ``test_ids`` empty and ``patterns_per_material`` None: an MCD run's labelled target patterns.
    """

    test_ids: tuple[str, ...]
    patterns_per_material: int | None

    def suffix(self, own: EvaluationSettings) -> str:
        """The file-name suffix of an evaluation with these settings beside ``own``'s:
        ``""`` for the run's own, else ``-ppm<N>`` or ``-ids-<hash>-ppm<N>``."""
        if self.is_own(own):
            return ""
        ids = ""
        if sorted(self.test_ids) != sorted(own.test_ids):
            digest = hashlib.sha1(",".join(sorted(self.test_ids)).encode()).hexdigest()[:8]
            ids = f"-ids-{digest}"
        return f"{ids}-ppm{self.patterns_per_material}"

    def is_own(self, own: EvaluationSettings) -> bool:
        """Whether these are the run's own settings (``own.patterns_per_material`` None: the
        run was never evaluated, and any number of patterns on its held-out materials is)."""
        same_ids = sorted(self.test_ids) == sorted(own.test_ids)
        count = own.patterns_per_material
        return same_ids and (count is None or count == self.patterns_per_material)

    def to_dict(self) -> dict:
        """JSON-ready form (the ``settings`` of ``evaluation*.json``)."""
        return {
            "test_ids": list(self.test_ids),
            "patterns_per_material": self.patterns_per_material,
        }


@dataclass
class StoredEvaluation:
    """An evaluation and where it went.

    Attributes
    ----------
    evaluation
        The scores (with counts per class and per material).
    settings, own_settings
        What was scored, and the run's own evaluation settings.
    own
        Whether this is the run's own evaluation (``evaluation.json``).
    folder, files
        The run folder and the names of the files written into it.
    """

    evaluation: Evaluation
    settings: EvaluationSettings
    own_settings: EvaluationSettings
    own: bool
    folder: str
    files: list[str]


def own_settings(run: Run, config: dict) -> EvaluationSettings:
    """The run's own evaluation settings: its held-out ``test_ids`` at the patterns per material
    recorded in its ``evaluation.json`` (None: never evaluated, or an MCD target evaluation)."""
    ids = tuple(config.get("test_ids") or ())
    if not ids or not run.has(EVALUATION_FILE):
        return EvaluationSettings(ids, None)
    stored = run.get_json(EVALUATION_FILE)
    stored = stored if isinstance(stored, dict) else {}
    count = (stored.get("settings") or {}).get("patterns_per_material")
    if count is None and stored.get("n_patterns"):  # stored before evaluations kept settings
        count = max(1, round(int(stored["n_patterns"]) / len(ids)))
    return EvaluationSettings(ids, None if count is None else int(count))


def _stream_predictions(
    loaded: LoadedRun, lake_url: str, storage_options: dict | None, test_ids: list[str],
    per_material: int,
) -> tuple[list, list, list[str]]:  # fmt: skip
    """Project exactly ``per_material`` patterns of each held-out material the way the run
    reads patterns, and predict them."""
    true_values, predicted, groups = [], [], []
    batches = held_out_batches(
        loaded, lake_url, storage_options, test_ids, per_material, EVALUATION_SEED_OFFSET
    )
    for patterns, values, mids in batches:
        indices = loaded.probabilities(patterns).argmax(1).tolist()
        predicted += [loaded.classes[i] for i in indices]
        true_values += values
        groups += mids
    return true_values, predicted, groups


def evaluate_run(
    lake_url: str,
    storage_options: dict | None,
    run_id: str,
    test_ids: list[str] | None = None,
    patterns_per_material: int | None = None,
) -> Evaluation:
    """Evaluate a run and store its evaluation files in the run folder (:func:`evaluate_and_store`).

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
        Projections per test material; default the run's own number (paper: 100).
    """
    return evaluate_and_store(
        lake_url, storage_options, run_id, test_ids, patterns_per_material
    ).evaluation


def evaluate_and_store(
    lake_url: str,
    storage_options: dict | None,
    run_id: str,
    test_ids: list[str] | None = None,
    patterns_per_material: int | None = None,
) -> StoredEvaluation:
    """Evaluate a run (arguments as :func:`evaluate_run`); the run's own settings overwrite its
    ``evaluation.json``..., other settings are stored beside them, named by the settings."""
    if patterns_per_material is not None and patterns_per_material < 1:
        raise TrainingError(f"--patterns-per-material {patterns_per_material}: must be >= 1")
    lake = open_lake(lake_url, storage_options, mode="a")
    loaded = load_run(lake, run_id)
    run = Run(lake, run_id)
    own = own_settings(run, loaded.config)
    ids = sorted(set(test_ids or own.test_ids))  # one order per set: same set, same patterns
    if ids == sorted(own.test_ids):
        ids = list(own.test_ids)
    if ids:
        count = patterns_per_material or own.patterns_per_material or DEFAULT_PATTERNS_PER_MATERIAL
        variants = tuple(loaded.settings.get("variants") or ("default",))
        option = "--test-ids" if test_ids else f"run {run_id!r} test_ids"
        check_materials(lake, ids, variants, option)
        true_values, predicted, groups = _stream_predictions(
            loaded, lake_url, storage_options, ids, count
        )
        settings = EvaluationSettings(tuple(ids), count)
    elif loaded.kind == "mcd":
        table = target_predictions(lake, run_id)
        keep = [i for i, label in enumerate(table["labels"]) if label is not None]
        true_values = [table["labels"][i] for i in keep]
        predicted = [table["predicted"][i] for i in keep]
        groups = [table["sources"][i] for i in keep]
        settings = EvaluationSettings((), None)
    else:
        raise TrainingError(f"run {run_id!r}: no held-out test materials; pass --test-ids")
    evaluation = score(run_id, loaded.classes, true_values, predicted, groups)
    trained = set(loaded.config.get("train_ids") or [])
    evaluation.seen_in_training = [m for m in ids if m in trained]
    suffix = settings.suffix(own)
    files = write_evaluation(run, evaluation, settings, suffix)
    return StoredEvaluation(evaluation, settings, own, not suffix, run.folder, files)


def write_evaluation(
    run: Run, evaluation: Evaluation, settings: EvaluationSettings, suffix: str = ""
) -> list[str]:
    """Write ``evaluation<suffix>.json`` (with ``settings``), the CSV tables and
    ``confusion<suffix>.png`` to the run folder; returns the file names."""
    tables = {
        f"confusion{suffix}.csv": confusion_csv(evaluation),
        f"per_class{suffix}.csv": table_csv(("label", "accuracy"), evaluation.per_class),
        f"per_material{suffix}.csv": table_csv(
            ("material_id", "accuracy"), evaluation.per_material
        ),
        f"confusion{suffix}.png": confusion_png(evaluation),
    }
    for name, data in tables.items():
        run.put_bytes(name, data)
    summary_name = EVALUATION_FILE.replace(".json", f"{suffix}.json")  # last: it holds settings
    run.put_json(summary_name, {**evaluation.summary(), "settings": settings.to_dict()})
    return [summary_name, *tables]


def evaluate_runs(
    lake_url: str,
    storage_options: dict | None,
    run_ids: list[str],
    patterns_per_material: int | None = None,
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
