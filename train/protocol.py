"""The paper's supervised protocol as one call: held-out split, grouped k-fold CV, final model.

Yan et al. 2025: materials of the experimental phases are held out as the test set; the rest are
split per label into k folds (no material in two folds); a model is trained per fold and
validated on the fold's materials each epoch; the epoch with the best mean validation accuracy
sets the final model's epoch count; the final model trains on all training materials and is
tested on the held-out ones.
"""

from __future__ import annotations

import numpy as np

from train.evaluate import evaluate_run, mean_interval
from train.runs import open_lake, put_json
from train.supervised import RunResult, SupervisedConfig, train_supervised
from train.targets import label_attribute
from train.training_errors import TrainingError

PROTOCOL_FILE = "protocol.json"


def material_labels(lake, material_ids: list[str], label: str) -> list:
    """Label value of each material for target ``label`` (read from the structure attrs)."""
    key = label_attribute(label)
    values = []
    for mid in material_ids:
        attrs = lake.structure(mid)
        if attrs.get(key) is None:
            raise TrainingError(f"structure {mid!r}: no label attribute {key!r}")
        values.append(attrs[key])
    return values


def trainable_materials(lake, variants: tuple[str, ...]) -> list[str]:
    """Structures with at least one complete master among ``variants``."""
    wanted = set(variants)
    return [m for m in lake.structure_ids() if wanted & set(lake.variants(m))]


def holdout_split(
    material_ids: list[str], labels: list, fraction: float, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Hold out about ``fraction`` of each label's materials (>= 1 where a label has >= 2).

    Returns
    -------
    (train_ids, test_ids)
        Disjoint; a label with one material stays in training.
    """
    if not 0 <= fraction < 1:
        raise TrainingError(f"holdout fraction {fraction}: must be in [0, 1)")
    rng = np.random.default_rng(seed)
    test: set[str] = set()
    for value in sorted(set(labels), key=str):
        members = [m for m, lab in zip(material_ids, labels, strict=True) if lab == value]
        if fraction == 0 or len(members) < 2:
            continue
        count = min(len(members) - 1, max(1, round(fraction * len(members))))
        test.update(rng.choice(members, size=count, replace=False).tolist())
    return [m for m in material_ids if m not in test], [m for m in material_ids if m in test]


def best_epoch_count(fold_results: list[RunResult]) -> int:
    """Epoch count (1-based) with the highest validation accuracy averaged over folds."""
    curves = np.array([[h["val_accuracy"] for h in r.history] for r in fold_results])
    return int(curves.mean(0).argmax()) + 1


def run_protocol(
    lake_url: str,
    storage_options: dict | None,
    config: SupervisedConfig,
    run_id: str,
    folds: int = 5,
    holdout_fraction: float = 0.2,
    material_ids: list[str] | None = None,
    test_ids: list[str] | None = None,
    choose_epochs: bool = True,
    test_patterns_per_material: int = 100,
    ray_address: str | None = None,
) -> dict:
    """Run held-out split, k-fold CV (``folds`` >= 2) and the final model; evaluate it.

    Parameters
    ----------
    lake_url, storage_options
        The lake.
    config
        Supervised settings shared by the folds and the final model.
    run_id
        The final model's run; folds are ``<run_id>-fold<i>``.
    folds
        Number of CV folds (paper: 5); 0 or 1 skips cross-validation.
    holdout_fraction
        Fraction of each label's materials held out as the test set (ignored with ``test_ids``).
    material_ids
        Materials to use (default: every structure with a master among ``config.variants``).
    test_ids
        Explicit held-out materials (e.g. the phases of an experiment).
    choose_epochs
        Train the final model for the CV's best epoch count instead of ``config.epochs``.
    test_patterns_per_material
        Projections per held-out material in the final evaluation.
    ray_address
        Ray cluster to join.

    Returns
    -------
    dict
        What ``protocol.json`` holds: fold accuracies with mean and 95 % interval, the epoch
        count, and the final model's held-out accuracy.
    """
    from train.sampling import grouped_folds

    lake = open_lake(lake_url, storage_options, mode="a")
    ids = list(material_ids) if material_ids else trainable_materials(lake, config.variants)
    labels = material_labels(lake, ids, config.label)
    if test_ids:
        train_ids = [m for m in ids if m not in set(test_ids)]
    else:
        train_ids, test_ids = holdout_split(ids, labels, holdout_fraction, config.seed)
    summary: dict = {"run_id": run_id, "label": config.label, "test_ids": list(test_ids)}
    epochs = config.epochs
    if folds >= 2:
        train_labels = [labels[ids.index(m)] for m in train_ids]
        fold_results = [
            train_supervised(
                lake_url,
                storage_options,
                fold_train,
                config,
                f"{run_id}-fold{i}",
                val_ids=fold_val,
                ray_address=ray_address,
            )  # fmt: skip
            for i, (fold_train, fold_val) in enumerate(
                grouped_folds(train_ids, train_labels, k=folds, seed=config.seed)
            )
        ]
        best = best_epoch_count(fold_results)
        fold_acc = [r.history[best - 1]["val_accuracy"] for r in fold_results]
        summary["folds"] = {r.run_id: a for r, a in zip(fold_results, fold_acc, strict=True)}
        summary["cv_accuracy"] = mean_interval(fold_acc)
        summary["cv_best_epochs"] = best
        epochs = best if choose_epochs else config.epochs
    final = train_supervised(
        lake_url, storage_options, train_ids, config.refine(epochs=epochs), run_id,
        test_ids=test_ids, ray_address=ray_address,
    )  # fmt: skip
    summary["final_epochs"] = epochs
    summary["train_ids"] = list(train_ids)
    if test_ids:
        evaluation = evaluate_run(
            lake_url, storage_options, run_id, list(test_ids), test_patterns_per_material
        )
        summary["test_accuracy"] = evaluation.accuracy
        summary["test_per_material"] = evaluation.per_material
    summary["final_history"] = final.history
    put_json(lake, run_id, PROTOCOL_FILE, summary)
    return summary
