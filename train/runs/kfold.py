"""The paper's supervised protocol as one call: held-out split, grouped k-fold CV, final model.

Yan et al. 2025: materials of the experimental phases are held out as the test set; the rest are
split per label into k folds (no material in two folds); a model is trained per fold and
validated on the fold's materials each epoch; the epoch with the best mean validation accuracy
sets the final model's epoch count; the final model trains on all training materials and is
tested on the held-out ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from train.config_section import PAPER_FOLDS, PAPER_HOLDOUT_FRACTION
from train.errors import TrainingError
from train.patterns import materials
from train.patterns.materials import check_classes, check_materials, holdout_split
from train.patterns.sampling import grouped_folds
from train.runs.evaluate import evaluate_run
from train.runs.run import PROTOCOL_FILE, Run, RunResult, open_lake
from train.runs.scores import mean_interval
from train.runs.training import run_config_of, train_supervised
from train.supervised import SupervisedConfig
from train.targets import label_attribute


def material_labels(lake, material_ids: list[str], label: str) -> list:
    """Label value of each material for the label target ``label``."""
    return materials.material_labels(lake, material_ids, label_attribute(label))


def best_epoch_count(fold_results: list[RunResult]) -> int:
    """Epoch count (1-based) with the highest validation accuracy averaged over folds."""
    curves = np.array([[h["val_accuracy"] for h in r.history] for r in fold_results])
    return int(curves.mean(0).argmax()) + 1


@dataclass
class ProtocolPlan:
    """Who trains and tests in one protocol, checked against the lake before any training.

    Attributes
    ----------
    train_ids, test_ids
        Training materials (split into folds) and held-out materials.
    folds
        ``(train_ids, val_ids)`` of each cross-validation fold (empty without CV).
    """

    train_ids: list[str]
    test_ids: list[str]
    folds: list[tuple[list[str], list[str]]]


def plan_protocol(
    lake,
    config: SupervisedConfig,
    run_id: str,
    folds: int = PAPER_FOLDS,
    holdout_fraction: float = PAPER_HOLDOUT_FRACTION,
    material_ids: list[str] | None = None,
    test_ids: list[str] | None = None,
    split_seed: int | None = None,
) -> ProtocolPlan:
    """Check a protocol's inputs and runs against the lake and split the materials (seeded by
    ``split_seed``, default ``config.seed``).

    Cheap (reads structure attributes and run files only), so the CLI calls it before starting
    Ray; :func:`run_protocol` calls it again. Raises :class:`TrainingError` naming the option
    at fault (``--folds``, ``--materials``, ``--test-ids``, ``--run-id``...).
    """
    config.validate()
    if folds < 1:
        raise TrainingError(f"--folds {folds}: must be >= 1 (1: no cross-validation)")
    if not 0 <= holdout_fraction < 1:
        raise TrainingError(f"--holdout-fraction {holdout_fraction}: must be in [0, 1)")
    seed = config.seed if split_seed is None else split_seed
    plan = _split_materials(
        lake, config, run_id, folds, holdout_fraction, material_ids, test_ids, seed
    )
    _check_protocol_runs(lake, config, run_id, plan)
    return plan


def _split_materials(
    lake,
    config: SupervisedConfig,
    run_id: str,
    folds: int,
    holdout_fraction: float,
    material_ids: list[str] | None,
    test_ids: list[str] | None,
    seed: int,
) -> ProtocolPlan:
    """The checked materials, split into training, held-out and CV folds by ``seed``."""
    if material_ids:
        check_materials(lake, list(material_ids), config.variants, "--materials")
    ids = (
        list(material_ids) if material_ids else materials.trainable_materials(lake, config.variants)
    )
    if not ids:
        raise TrainingError(
            f"{lake.url}: no complete master among variants {list(config.variants)}; "
            "run `ebsdlake simulate` first"
        )
    labels = material_labels(lake, ids, config.label)
    if test_ids:
        check_materials(lake, list(test_ids), config.variants, "--test-ids")
        material_labels(lake, list(test_ids), config.label)
        train_ids, test_ids = [m for m in ids if m not in set(test_ids)], list(test_ids)
    else:
        train_ids, test_ids = holdout_split(ids, labels, holdout_fraction, seed)
    train_labels = [labels[ids.index(m)] for m in train_ids]
    check_classes(run_id, config.label, train_labels)
    if folds < 2:
        return ProtocolPlan(train_ids, test_ids, [])
    if len(train_ids) < folds:
        raise TrainingError(
            f"--folds {folds}: needs at least {folds} training materials, there are "
            f"{len(train_ids)} after holding out {len(test_ids)}"
        )
    return ProtocolPlan(
        train_ids, test_ids, grouped_folds(train_ids, train_labels, k=folds, seed=seed)
    )


def _check_protocol_runs(lake, config: SupervisedConfig, run_id: str, plan: ProtocolPlan) -> None:
    """Refuse a finished final run, and fold or final runs stored with other settings."""
    Run(lake, run_id).refuse_finished()
    final = run_config_of("supervised", config, lake.url, plan.train_ids, None, plan.test_ids)
    Run(lake, run_id).check_settings(final, ignore=("config.epochs",))  # the CV sets epochs
    for i, (fold_train, fold_val) in enumerate(plan.folds):
        fold = run_config_of("supervised", config, lake.url, fold_train, fold_val)
        Run(lake, f"{run_id}-fold{i}").check_settings(fold)


def run_protocol(
    lake_url: str,
    storage_options: dict | None,
    config: SupervisedConfig,
    run_id: str,
    folds: int = PAPER_FOLDS,
    holdout_fraction: float = PAPER_HOLDOUT_FRACTION,
    material_ids: list[str] | None = None,
    test_ids: list[str] | None = None,
    choose_epochs: bool = True,
    test_patterns_per_material: int = 100,
    ray_address: str | None = None,
    split_seed: int | None = None,
) -> dict:
    """Run held-out split, k-fold CV (``folds`` >= 2) and the final model; evaluate it.

    Everything is checked first (:func:`plan_protocol`): a finished run ``run_id`` is refused,
    and so is an existing fold or final run with other settings. Fold runs that finished with
    the same settings are read back and unfinished ones resumed, so re-running an interrupted
    protocol goes on where it stopped.

    Parameters
    ----------
    lake_url, storage_options
        The existing lake.
    config
        Supervised settings shared by the folds and the final model.
    run_id
        The final model's run; folds are ``<run_id>-fold<i>``.
    folds
        Number of CV folds (paper: 5); 1 skips cross-validation.
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
    split_seed
        Seed of the held-out split and the folds (default ``config.seed``): another
        ``config.seed`` with the same ``split_seed`` draws the network and stream again on the
        same materials.

    Returns
    -------
    dict
        What ``protocol.json`` holds: fold accuracies with mean and 95 % interval, the epoch
        count, and the final model's held-out accuracy.
    """
    lake = open_lake(lake_url, storage_options, mode="a")
    plan = plan_protocol(
        lake, config, run_id, folds, holdout_fraction, material_ids, test_ids, split_seed
    )
    train_ids, test_ids = plan.train_ids, plan.test_ids
    summary: dict = {"run_id": run_id, "label": config.label, "test_ids": list(test_ids)}
    epochs = config.epochs
    if plan.folds:
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
            for i, (fold_train, fold_val) in enumerate(plan.folds)
        ]
        best = best_epoch_count(fold_results)
        fold_acc = [r.history[best - 1]["val_accuracy"] for r in fold_results]
        summary["folds"] = {r.run_id: a for r, a in zip(fold_results, fold_acc, strict=True)}
        summary["cv_accuracy"] = mean_interval(fold_acc)
        summary["cv_best_epochs"] = best
        epochs = best if choose_epochs else config.epochs
    final = train_supervised(
        lake_url, storage_options, train_ids, config.refine(epochs=epochs), run_id,
        test_ids=test_ids, ray_address=ray_address, reuse_finished=False,
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
    Run(lake, run_id).put_json(PROTOCOL_FILE, summary)
    return summary
