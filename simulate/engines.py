"""Simulation engines behind one interface; pick one by name with :func:`get_engine`."""

from __future__ import annotations

from simulate.engine_base import Engine, MasterResult, ProgressCallback
from simulate.errors import SimulateInputError

ENGINE_NAMES = ("dynamical", "emsoft")


def get_engine(name: str) -> Engine:
    """A fresh engine instance: ``"dynamical"`` (de-ebsd) or ``"emsoft"`` (EMsoft programs)."""
    if name == "dynamical":
        from simulate.engine_dynamical import DynamicalEngine

        return DynamicalEngine()
    if name == "emsoft":
        from simulate.engine_emsoft import EmsoftEngine

        return EmsoftEngine()
    raise SimulateInputError(f"engine {name!r}: expected one of {', '.join(ENGINE_NAMES)}")


__all__ = ["ENGINE_NAMES", "Engine", "MasterResult", "ProgressCallback", "get_engine"]
