"""Exceptions raised by the simulate package.

Each carries a one-line message naming the thing at fault (material, variant, file, field,
program) and the reason, so the CLI can print it as is (exit code 2, no traceback).
"""

from __future__ import annotations

from lake.errors import EbsdlakeError


class SimulateError(EbsdlakeError, RuntimeError):
    """Base class of every error the simulate package raises on purpose."""


class SimulateInputError(SimulateError, ValueError):
    """Bad input from the caller: an invalid setting, structure record or selection."""


class StructureError(SimulateInputError):
    """A structure record the engines cannot turn into a crystal (missing field, bad site)."""


class EngineUnavailableError(SimulateError):
    """An engine whose programs or devices are not present on this machine."""


class EmsoftFileError(SimulateInputError):
    """An EMsoft HDF5 file that is missing, unreadable or lacks a required dataset."""


def setting_text(name: str, value: object) -> str:
    """``--flag VALUE`` for a command-line flag, ``name = VALUE`` for a config setting, the
    way messages name what the user set."""
    return f"{name} {value}" if name.startswith("--") else f"{name} = {value}"
