"""Exceptions of the training side of ``train`` (training, MCD, evaluation, prediction).

The CLI turns these into one line on stderr and exit code 2, so every message names the thing
that is wrong (file, field, run) and the reason.
"""

from __future__ import annotations


class TrainingError(ValueError):
    """Bad input to training, evaluation or prediction (a missing run, an unknown label...)."""


class TrainingRunError(RuntimeError):
    """A training run failed while running (Ray Train error, no checkpoint produced...)."""


def one_line(exc: BaseException | str, limit: int = 300) -> str:
    """An exception's message (or a text) as one line of at most ``limit`` characters.

    Parameters
    ----------
    exc
        The exception (its ``str``; its type name when that is empty) or a text.
    limit
        Longest result; longer ones end in ``...``.

    Returns
    -------
    str
        The lines joined by single spaces.
    """
    text = " ".join(str(exc).split())
    if not text and isinstance(exc, BaseException):
        text = type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
