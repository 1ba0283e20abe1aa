"""Exceptions raised by ``ingest`` for bad input; the CLI prints them as one line (exit 2)."""

from __future__ import annotations

from lake.errors import EbsdlakeError


class IngestError(EbsdlakeError, ValueError):
    """A structure, file, query or parameter that ingest refuses, with the reason."""


class CifError(IngestError):
    """A CIF file that cannot be read; the message names the file and what is wrong."""


class DisorderedStructureError(IngestError):
    """A structure with partially occupied or mixed sites (not allowed unless ordered)."""


class SymmetryError(IngestError):
    """A structure whose symmetry cannot be found or does not match what was asked for."""


class MissingApiKeyError(IngestError):
    """No Materials Project API key was configured."""


class MaterialsProjectError(EbsdlakeError, RuntimeError):
    """The Materials Project API failed after all retries, or refused the request."""
