"""The base error of ``train.patterns``: bad input to projection, pre-processing or pattern reading."""

from __future__ import annotations

from lake.errors import EbsdlakeError, one_line

__all__ = ["PatternError", "one_line"]


class PatternError(EbsdlakeError, ValueError):
    """Bad input to a pattern stage (a file, a geometry, a material list); one-line message."""
