"""``ebsdlake predict``: a run's or a model package's calls on pattern files, file by file.

The parser is registered with ``train`` in ``infra.app.train_cli``; this is its handler: it
loads the model (and a gate), repeats what their cards say not to use them for, writes each
file's CSV and phase map as soon as it is predicted and reports the files that failed in one
line at the end.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from train.errors import TrainingError


def note_limits(loaded: Any, role: str) -> None:
    """Repeat on stderr what a model package's card says not to use it for (its limits), so a
    weak model or gate is never used without the user hearing it."""
    if loaded is not None and loaded.limits:
        print(
            f"ebsdlake predict: note: the {role} {loaded.run_id}'s card: {loaded.limits}",
            file=sys.stderr,
        )


def predict_handler(args: argparse.Namespace) -> int:
    """``ebsdlake predict RUN FILE...`` or ``predict --model NAME FILE...``: CSV (and a phase
    map for scans) per file, and one summary line per file.

    Each file's results are written as soon as it is predicted; a file that cannot be read is
    reported (one line at the end, exit code 2) without losing the others' results.
    """
    from train.patterns.scan_geometry import GivenGeometry
    from train.runs.inference import load_model
    from train.runs.predict import (
        Prediction,
        check_inputs,
        iter_predictions,
        predict_loaded,
        summary_line,
        write_prediction,
    )

    model, files = getattr(args, "model", None), list(args.files)
    if model is not None and args.run is not None:
        files.insert(0, args.run)  # with --model every positional argument is a file
    if model is None and args.run is None:
        raise TrainingError("predict: give a RUN id or --model NAME before the files")
    check_inputs(files, args.out)
    given = None
    if getattr(args, "pc", None) is not None:
        given = GivenGeometry(
            tuple(args.pc), args.pc_convention, args.detector_tilt, args.sample_tilt
        )
    failures = []
    gate = None if getattr(args, "gate", None) is None else load_model(args.gate)
    note_limits(gate, "gate")
    if model is not None:
        loaded = load_model(model)
        note_limits(loaded, "model")
        predictions = predict_loaded(loaded, files, given, gate)
    else:
        predictions = iter_predictions(
            args.lake, args.storage_options, args.run, files, given, gate
        )
    for prediction in predictions:
        if not isinstance(prediction, Prediction):
            failures.append(str(prediction))
            continue
        written = write_prediction(prediction, args.out)
        print(
            f"{summary_line(prediction)}; {prediction.geometry_note}; "
            f"wrote {', '.join(str(p) for p in written)}"
        )
    if failures:
        done = len(files) - len(failures)
        raise TrainingError(
            f"{len(failures)} of {len(files)} inputs not predicted"
            f"{f' (the other {done} are written)' if done else ''}: {'; '.join(failures)}"
        )
    return 0
