"""Exceptions of the training side of ``train`` (training, MCD, evaluation, prediction).

The CLI turns these into one line on stderr and exit code 2, so every message names the thing
that is wrong (file, field, run) and the reason.
"""

from __future__ import annotations


class TrainingError(ValueError):
    """Bad input to training, evaluation or prediction (a missing run, an unknown label...)."""


class TrainingRunError(RuntimeError):
    """A training run failed while running (Ray Train error, no checkpoint produced...)."""
