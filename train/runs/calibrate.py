"""``ebsdlake calibrate RUN``: fit a run's temperature and threshold on held-out simulations.

The calibration set is simulated patterns of materials the run never trained on: its
validation materials (``val_ids``) when it has them, else its held-out test materials
(``test_ids``), else the materials given. They are projected the way the run reads patterns
(its ``reading.json``), with a seed of their own (:data:`CALIBRATION_SEED_OFFSET`), so they are
other orientations than the patterns that ``evaluate`` scores; temperature scaling never changes
a call, so the reported accuracies stay what they were. The result is written to the run as
``calibration.json`` (:class:`~train.runs.calibration.Calibration`).
"""

from __future__ import annotations

import numpy as np

from train.errors import TrainingError
from train.patterns.materials import check_materials
from train.runs.calibration import TARGET_PRECISION, Calibration, calibrate
from train.runs.held_out import held_out_batches
from train.runs.inference import LoadedRun, load_run
from train.runs.run import CALIBRATION_FILE, Run, open_lake

CALIBRATION_SEED_OFFSET = 2_000_029
"""Added to the run's seed: calibration patterns are not the ones evaluation scores."""


def calibration_materials(loaded: LoadedRun, material_ids: list[str] | None = None) -> list[str]:
    """The materials to calibrate on: ``material_ids``, else ``val_ids``, else ``test_ids``."""
    ids = list(material_ids or loaded.config.get("val_ids") or loaded.config.get("test_ids") or [])
    if not ids:
        raise TrainingError(
            f"run {loaded.run_id!r}: no validation or held-out materials to calibrate on; "
            "pass --materials"
        )
    trained = set(loaded.config.get("train_ids") or [])
    seen = [m for m in ids if m in trained]
    if seen:
        raise TrainingError(
            f"run {loaded.run_id!r} was trained on {', '.join(seen[:3])}: calibrate on "
            "materials it never saw"
        )
    return ids


def held_out_probabilities(
    loaded: LoadedRun,
    lake_url: str,
    storage_options: dict | None,
    material_ids: list[str],
    per_material: int,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Raw (uncalibrated) probabilities (N, C), true class indices (N,) and material per
    pattern of ``per_material`` projections of each material, read the way the run reads."""
    probabilities, labels, groups = [], [], []
    batches = held_out_batches(
        loaded, lake_url, storage_options, material_ids, per_material, CALIBRATION_SEED_OFFSET
    )
    for patterns, values, mids in batches:
        unknown = sorted({v for v in values if v not in loaded.classes}, key=str)
        if unknown:
            raise TrainingError(
                f"run {loaded.run_id!r}: calibration materials have labels {unknown} outside "
                f"its classes {loaded.classes}"
            )
        probabilities.append(loaded.raw_probabilities(patterns).numpy())
        labels += [loaded.classes.index(v) for v in values]
        groups += mids
    return np.concatenate(probabilities), np.asarray(labels), groups


def calibrate_run(
    lake_url: str,
    storage_options: dict | None,
    run_id: str,
    patterns_per_material: int = 100,
    material_ids: list[str] | None = None,
    target_precision: float = TARGET_PRECISION,
) -> Calibration:
    """Fit and store a run's calibration (``calibration.json``); return it.

    Parameters
    ----------
    lake_url, storage_options
        The lake holding the run and the materials' masters.
    run_id
        A finished run.
    patterns_per_material
        Projections per calibration material.
    material_ids
        Materials to calibrate on (default the run's validation, else held-out materials);
        none may be a training material of the run.
    target_precision
        Fraction of confident calls that must be right (sets the threshold).
    """
    if patterns_per_material < 1:
        raise TrainingError(f"--patterns-per-material {patterns_per_material}: must be >= 1")
    lake = open_lake(lake_url, storage_options, mode="a")
    loaded = load_run(lake, run_id)
    ids = calibration_materials(loaded, material_ids)
    variants = tuple(loaded.settings.get("variants") or ("default",))
    check_materials(lake, ids, variants, "--materials" if material_ids else f"run {run_id!r}")
    probabilities, labels, groups = held_out_probabilities(
        loaded, lake_url, storage_options, ids, patterns_per_material
    )
    calibration = calibrate(probabilities, labels, groups, target_precision)
    Run(lake, run_id).put_json(CALIBRATION_FILE, calibration.to_dict())
    return calibration
