"""Prediction: label experimental patterns with a trained run.

Patterns are read like MCD targets (kikuchipy formats or an image folder), pre-processed with the
pre-processing and input size the run was trained with (its ``reading.json``), and scored with
the run's calibration (its ``calibration.json``: temperature and uncertainty threshold). The
outputs (CSV per file, phase map PNG per scan, summary line) are written by
:mod:`train.runs.prediction_outputs`, whose names this module re-exports.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from train.errors import TrainingError
from train.patterns.errors import PatternError
from train.patterns.experimental import PatternSet, image_quality, read_patterns
from train.patterns.network_input import network_input
from train.patterns.scan_geometry import GivenGeometry, ScanGeometry, read_scan_geometry
from train.patterns.static_background import with_static_background
from train.runs.beam_energy import beam_energy_note
from train.runs.inference import LoadedRun, load_run
from train.runs.prediction_outputs import (
    Prediction,
    phase_map_png,
    predictions_csv,
    summary_line,
    write_prediction,
)
from train.runs.prediction_outputs import out_folder as _out_folder
from train.runs.run import open_lake
from train.runs.scope_gate import ScopeGate

__all__ = [
    "Prediction",
    "check_inputs",
    "iter_predictions",
    "phase_map_png",
    "predict_file",
    "predict_files",
    "predict_loaded",
    "read_as_trained",
    "predictions_csv",
    "summary_line",
    "write_prediction",
]


def predict_file(
    loaded: LoadedRun,
    path: str | Path,
    given: GivenGeometry | None = None,
    gate: ScopeGate | None = None,
) -> Prediction:
    """Predict every pattern of one file with a loaded run, read the way it was trained.

    The recording geometry is ``given`` when the user gives one (``--pc``), else what the
    file carries (``read_scan_geometry``); a known geometry is re-projected onto the run's
    detector, an unknown one cropped to the central square. A file without a static background
    is flat-fielded by a smooth fit to its mean (``with_static_background``). The run's input size and
    pre-processing come from its ``reading.json``. ``Prediction.geometry_note`` says which was
    used, and the beam energy the file records against the model's training energies;
    ``Prediction.quality`` holds each raw pattern's image quality. With a ``gate`` (a
    Laue-class model), patterns it puts outside the run's classes come out uncertain.
    """
    pattern_set, used, prepared = read_as_trained(loaded, path, given)
    probabilities = loaded.probabilities(prepared).numpy().astype(np.float32)
    beam = beam_energy_note(
        used.beam_energy_kv, loaded.beam_energies_kv, loaded.beam_energy_accuracy
    )
    return Prediction(
        loaded.run_id, str(path), pattern_set.nav_shape, loaded.classes, probabilities,
        geometry_note="; ".join(n for n in (used.note, beam) if n), label=loaded.reading.label, threshold=loaded.threshold,
        calibrated=loaded.calibration is not None, quality=image_quality(pattern_set.patterns),
        gate=None if gate is None else gate.read(pattern_set.patterns, used),
    )  # fmt: skip


def read_as_trained(
    loaded: LoadedRun, path: str | Path, given: GivenGeometry | None = None
) -> tuple[PatternSet, ScanGeometry, torch.Tensor]:
    """One file read the way ``loaded`` was trained: ``(patterns, geometry used, network
    input)``. The geometry is ``given`` when the user gives one, else what the file carries,
    with a static background (the file's, else a smooth fit to its mean)."""
    pattern_set = read_patterns(path)
    shape = tuple(pattern_set.patterns.shape[-2:])
    recorded = read_scan_geometry(path, shape)
    used = recorded
    if given is not None:
        used = given.for_shape(shape, recorded.static_background, recorded.beam_energy_kv)
    used = with_static_background(used, pattern_set.patterns)
    return pattern_set, used, network_input(pattern_set.patterns, used, loaded.reading)


def predict_files(
    lake_url: str,
    storage_options: dict | None,
    run_id: str,
    files: list[str],
    given: GivenGeometry | None = None,
) -> list[Prediction]:
    """Load run ``run_id`` from the lake and predict each file (the first bad file raises)."""
    loaded = load_run(open_lake(lake_url, storage_options), run_id)
    return [predict_file(loaded, path, given) for path in files]


def iter_predictions(
    lake_url: str,
    storage_options: dict | None,
    run_id: str,
    files: list[str],
    given: GivenGeometry | None = None,
    gate: LoadedRun | None = None,
) -> Iterator[Prediction | TrainingError | PatternError]:
    """Load run ``run_id`` and yield each file's :class:`Prediction` as soon as it is done.

    A file that cannot be predicted yields its :class:`TrainingError` instead, so the caller
    keeps (and writes) the results of the other files.
    """
    loaded = load_run(open_lake(lake_url, storage_options), run_id)
    yield from predict_loaded(loaded, files, given, gate)


def predict_loaded(
    loaded: LoadedRun,
    files: list[str],
    given: GivenGeometry | None = None,
    gate: LoadedRun | None = None,
) -> Iterator[Prediction | TrainingError | PatternError]:
    """Yield each file's :class:`Prediction` with a loaded run or model package, gated by the
    Laue-class model ``gate`` when given (checked before any file is read; a file that cannot
    be predicted yields its error instead)."""
    scope = None if gate is None else ScopeGate.for_model(loaded, gate)
    for path in files:
        try:
            yield predict_file(loaded, path, given, scope)
        except (TrainingError, PatternError) as exc:
            yield exc


def check_inputs(files: list[str], out_dir: str | Path) -> None:
    """Raise :class:`TrainingError` before any work when an input is missing or ``out_dir``
    cannot be a folder (an existing file, or under one)."""
    missing = [path for path in files if not Path(path).exists()]
    if missing:
        raise TrainingError(f"patterns {missing[0]}: no such file or folder")
    _out_folder(out_dir)
