"""Exceptions of the training side (training, MCD, evaluation, prediction).

The CLI turns these into one line on stderr and exit code 2, so every message names the thing
that is wrong (file, field, run) and the reason.
"""

from __future__ import annotations

from lake.errors import EbsdlakeError, one_line

__all__ = ["TrainingError", "TrainingRunError", "one_line"]


class TrainingError(EbsdlakeError, ValueError):
    """Bad input to training, evaluation or prediction (a missing run, an unknown label...)."""


class TrainingRunError(EbsdlakeError, RuntimeError):
    """A training run failed while running (Ray Train error, no checkpoint produced...)."""
