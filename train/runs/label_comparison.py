"""The paper's supervised experiment at any scale: one protocol per label target on one lake.

Yan et al. 2025 (Fig. 2-3) compare training on the true space group with training on the
compositionally-disordered one. For a fair comparison every label is tested on the same
held-out materials (stratified on the combination of all the labels); each label then runs
``train.protocol.run_protocol`` (grouped k-fold CV, final model for the CV's best epoch count,
held-out accuracy). The results table is written as Markdown and CSV.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from train.config_section import PAPER_FOLDS, PAPER_HOLDOUT_FRACTION
from train.errors import TrainingError
from train.patterns.materials import holdout_split, trainable_materials
from train.runs.kfold import material_labels, run_protocol
from train.runs.run import PROTOCOL_FILE, Run, as_stored_json, open_lake
from train.supervised import SupervisedConfig

RESULTS_MD = "results.md"
RESULTS_CSV = "results.csv"
CSV_HEADER = ["label", "cv_mean", "cv_low", "cv_high", "folds", "epochs", "test_accuracy"]


def shared_holdout(
    lake_url: str,
    storage_options: dict | None,
    config: SupervisedConfig,
    labels: Sequence[str],
    fraction: float,
) -> tuple[list[str], list[str]]:
    """``(train_ids, test_ids)`` shared by every label: ``fraction`` of each combination of the
    labels' values is held out (a combination with one material stays in training)."""
    lake = open_lake(lake_url, storage_options)
    ids = trainable_materials(lake, config.variants)
    if not ids:
        raise TrainingError(
            f"{lake_url}: no complete master among variants {list(config.variants)}; "
            "run `ebsdlake simulate` first"
        )
    per_label = [material_labels(lake, ids, label) for label in labels]
    combined = [tuple(values) for values in zip(*per_label, strict=True)]
    return holdout_split(ids, combined, fraction, config.seed)


def run_science(
    lake_url: str,
    storage_options: dict | None,
    config: SupervisedConfig,
    labels: Sequence[str],
    out_dir: str | Path,
    folds: int = PAPER_FOLDS,
    holdout_fraction: float = PAPER_HOLDOUT_FRACTION,
    run_prefix: str = "science",
    ray_address: str | None = None,
    report: Callable[[str], None] = print,
) -> list[dict]:
    """Run the protocol for each label on one shared held-out set; write the tables.

    A label whose protocol already finished in the lake with the same settings, folds and
    held-out materials is read back instead of trained again, so a re-run after a crash goes
    on with the labels that are missing.

    Parameters
    ----------
    lake_url, storage_options
        The lake (its complete masters among ``config.variants`` are the materials).
    config
        Training settings; ``label`` is replaced by each of ``labels``.
    labels
        Label targets (``train.targets.LABEL_TARGETS`` keys), e.g. true and disordered group.
    out_dir
        Folder for ``results.md`` and ``results.csv``.
    folds, holdout_fraction
        k of the grouped k-fold CV (paper 5) and the held-out share of the materials.
    run_prefix
        Runs are ``<prefix>-<label>`` (final) and ``<prefix>-<label>-fold<i>``.
    ray_address
        Ray cluster to join (None: the running or a local one).
    report
        Receives one progress line per finished label.

    Returns
    -------
    list of dict
        One protocol summary per label (``train.protocol.run_protocol``).
    """
    train_ids, test_ids = shared_holdout(
        lake_url, storage_options, config, labels, holdout_fraction
    )
    if folds >= 2 and len(train_ids) < folds:
        raise TrainingError(
            f"--folds {folds}: needs at least {folds} training materials, the lake has "
            f"{len(train_ids)} after holding out {len(test_ids)}"
        )
    report(f"held out {len(test_ids)} materials for every label: {' '.join(test_ids)}")
    rows = []
    for label in labels:
        run_id = f"{run_prefix}-{label}"
        labelled = config.refine(label=label)
        summary = finished_protocol(lake_url, storage_options, run_id, labelled, folds, test_ids)
        if summary is not None:
            report(f"{label}: reusing the finished protocol {run_id!r}")
        else:
            summary = run_protocol(
                lake_url, storage_options, labelled, run_id,
                folds=folds, test_ids=test_ids, ray_address=ray_address,
            )  # fmt: skip
        rows.append(summary)
        shown = {k: summary.get(k) for k in ("cv_accuracy", "test_accuracy")}
        report(f"{label}: {json.dumps(shown)}")
    write_results(rows, out_dir)
    return rows


def finished_protocol(
    lake_url: str,
    storage_options: dict | None,
    run_id: str,
    config: SupervisedConfig,
    folds: int,
    test_ids: Sequence[str],
) -> dict | None:
    """The stored protocol summary of ``run_id`` when it finished with these settings (all but
    the final epoch count, which the CV chose), folds and held-out materials; else None."""
    run = Run(open_lake(lake_url, storage_options), run_id)
    if not run.exists():
        return None
    try:
        summary = run.get_json(PROTOCOL_FILE)
        stored = run.config["config"]
    except (TrainingError, KeyError):
        return None
    expected = as_stored_json(dataclasses.asdict(config))
    ignored = ("epochs", "fault")
    same_config = all(stored.get(k) == v for k, v in expected.items() if k not in ignored)
    same_folds = len(summary.get("folds", {})) == (folds if folds >= 2 else 0)
    same_test = sorted(summary.get("test_ids", [])) == sorted(test_ids)
    return summary if same_config and same_folds and same_test else None


def results_table(rows: Sequence[dict]) -> str:
    """Markdown table: label, CV accuracy (mean and 95 % interval), folds, epochs, held-out."""
    lines = [
        "| label | CV accuracy (mean, 95% interval) | folds | epochs | held-out accuracy |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        cv = row.get("cv_accuracy")
        cv_text = f"{cv['mean']:.3f} ({cv['low']:.3f}-{cv['high']:.3f})" if cv else "-"
        held = row.get("test_accuracy")
        lines.append(
            f"| {row['label']} | {cv_text} | {len(row.get('folds', {}))} | "
            f"{row['final_epochs']} | {'-' if held is None else f'{held:.3f}'} |"
        )
    return "\n".join(lines) + "\n"


def write_results(rows: Sequence[dict], out_dir: str | Path) -> None:
    """``results.md`` (the table) and ``results.csv`` (one row per label) in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULTS_MD).write_text(results_table(rows))
    with open(out / RESULTS_CSV, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_HEADER)
        for row in rows:
            cv = row.get("cv_accuracy") or {}
            writer.writerow(
                [row["label"], cv.get("mean"), cv.get("low"), cv.get("high"),
                 len(row.get("folds", {})), row["final_epochs"], row.get("test_accuracy")]
            )  # fmt: skip
