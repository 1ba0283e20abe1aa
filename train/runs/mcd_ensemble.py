"""The paper's MCD protocol: ``runs`` MCD models with seeds ``seed + k`` and their majority vote.

Yan et al. 2025 trained 30 MCD runs and voted per pattern. Members are runs ``<run_id>-r<k>``;
the target set is read once (with the members' pre-processing and input size) and shared; the
vote reads each member's ``target_predictions.json``.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from train.errors import TrainingError
from train.mcd import MCDConfig
from train.patterns.experimental import TargetSet, TargetSpec
from train.runs.run import TARGET_PREDICTIONS_FILE, Run, RunResult, open_lake
from train.runs.scores import mean_interval, score
from train.runs.training import run_config_of, target_set_for, train_mcd


def ensemble_run_ids(run_id: str, runs: int) -> list[str]:
    """The runs of an ensemble: ``<run_id>-r00``, ``<run_id>-r01``..."""
    return [f"{run_id}-r{k:02d}" for k in range(runs)]


def mcd_run_config(
    config: MCDConfig, lake_url: str, source_ids: list[str], target_sources: list[str]
) -> dict:
    """What ``config.json`` of an MCD run holds (compared when a run is trained again)."""
    extra = {"targets": sorted(set(target_sources))}
    return run_config_of("mcd", config, lake_url, source_ids, extra=extra)


def check_ensemble(
    lake,
    run_id: str,
    runs: int,
    config: MCDConfig,
    source_ids: list[str],
    target_sources: list[str],
) -> None:
    """Refuse an ensemble whose runs all finished, or whose existing runs have other settings.

    Cheap (reads run files only), so the CLI calls it before starting Ray. Finished runs with
    the same settings are read back by :func:`train_mcd_ensemble`, unfinished ones resumed.
    """
    if runs < 1:
        raise TrainingError(f"--runs {runs}: must be >= 1")
    config.validate()
    members = ensemble_run_ids(run_id, runs)
    statuses = [
        Run(lake, member).check_settings(
            mcd_run_config(
                config.refine(seed=config.seed + k), lake.url, source_ids, target_sources
            )
        )
        for k, member in enumerate(members)
    ]
    if all(status == "finished" for status in statuses):
        shown = ", ".join(members[:3]) + (" ..." if runs > 3 else "")
        raise TrainingError(
            f"run {run_id!r} already exists in {lake.url} ({shown} finished); choose another "
            f"--run-id or remove them ({Run(lake, members[0]).folder} ...)"
        )


def train_mcd_ensemble(
    lake_url: str,
    storage_options: dict | None,
    source_ids: list[str],
    targets: list[TargetSpec] | TargetSet,
    config: MCDConfig,
    run_id: str,
    runs: int = 30,
    ray_address: str | None = None,
) -> list[RunResult]:
    """Train ``runs`` MCD models (seeds ``seed + k``) as runs ``<run_id>-r<k>`` (paper: 30).

    An ensemble whose runs all finished is refused (:func:`check_ensemble`); after an
    interruption, finished runs are read back and the unfinished one resumed.
    """
    if runs < 1:
        raise TrainingError(f"MCD ensemble {run_id!r}: runs={runs} must be >= 1")
    target_set = target_set_for(targets, config)
    lake = open_lake(lake_url, storage_options)
    check_ensemble(lake, run_id, runs, config, list(source_ids), target_set.sources)
    return [
        train_mcd(
            lake_url,
            storage_options,
            source_ids,
            target_set,
            config.refine(seed=config.seed + k),
            member,
            ray_address,
        )  # fmt: skip
        for k, member in enumerate(ensemble_run_ids(run_id, runs))
    ]


def target_predictions(lake, run_id: str) -> dict:
    """An MCD run's ``target_predictions.json``; a missing, supervised or unfinished run is a
    :class:`TrainingError` saying which."""
    run = Run(lake, run_id).require()
    kind = run.kind
    if kind != "mcd":
        raise TrainingError(
            f"run {run_id!r} is a {kind or 'unknown'} run, not an MCD ensemble run "
            "(evaluate it without --ensemble)"
        )
    if not run.has(TARGET_PREDICTIONS_FILE):
        raise TrainingError(f"run {run_id!r}: unfinished MCD run (no {TARGET_PREDICTIONS_FILE})")
    table = run.get_json(TARGET_PREDICTIONS_FILE)
    if not isinstance(table, dict) or not {"labels", "sources", "predicted"} <= set(table):
        raise TrainingError(f"run {run_id!r}: {TARGET_PREDICTIONS_FILE} lacks its columns")
    return table


def ensemble_vote(lake_url: str, storage_options: dict | None, run_ids: list[str]) -> dict:
    """Majority vote of MCD runs on their shared labelled target patterns (the paper's ensemble).

    Returns
    -------
    dict
        ``accuracy`` (voted, overall), ``per_material`` (voted, per target source),
        ``run_accuracy`` (mean and 95 % interval of the single runs), ``runs``.
    """
    lake = open_lake(lake_url, storage_options)
    if not run_ids:
        raise TrainingError("ensemble vote: no runs given")
    tables = [target_predictions(lake, run) for run in run_ids]
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
