"""The engine interface: structure record + settings + B-factors -> :class:`MasterResult`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from simulate.settings import SimulationSettings
from simulate.structure import StructureLike, as_record

#: ``progress(done, total)`` callback; engines call it from the computing thread.
ProgressCallback = Callable[[int, int], None]


@dataclass
class MasterResult:
    """One simulated (or imported) energy-resolved master pattern.

    Attributes
    ----------
    master
        float32 ``(n_energies, 2, 2*npx+1, 2*npx+1)`` square-Lambert intensities, north then
        south hemisphere (EMsoft ``mLPNH``/``mLPSH`` layout: row = Lambert Y, col = X).
    energies_kev
        Energy (keV) of each plane, ascending, ``(n_energies,)``.
    weights
        Monte Carlo backscatter yield per energy bin (fraction of incident electrons),
        ``(n_energies,)``; the weights a projection sums the planes with.
    attrs
        Provenance written with the master: engine, engine_version, every setting,
        ``bfactors_nm2`` per site, ``wall_time_s``...
    """

    master: np.ndarray
    energies_kev: np.ndarray
    weights: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.master = np.ascontiguousarray(self.master, dtype=np.float32)
        self.energies_kev = np.asarray(self.energies_kev, dtype=np.float64).reshape(-1)
        self.weights = np.asarray(self.weights, dtype=np.float64).reshape(-1)
        n = self.master.shape[0] if self.master.ndim == 4 else -1
        if self.master.ndim != 4 or self.master.shape[1] != 2:
            raise ValueError(f"master shape {self.master.shape} is not (nE, 2, n, n)")
        if len(self.energies_kev) != n or len(self.weights) != n:
            raise ValueError(
                f"{len(self.energies_kev)} energies and {len(self.weights)} weights "
                f"for {n} master planes"
            )

    @property
    def npx(self) -> int:
        """Half-width of the Lambert grid (``2 npx + 1`` pixels per side)."""
        return (self.master.shape[-1] - 1) // 2


class Engine(Protocol):
    """What the farm needs from an engine (loaded once per actor, run once per job)."""

    name: str

    def version(self) -> str:
        """Engine name and version recorded in the master attrs."""

    def check_available(self, settings: SimulationSettings) -> None:
        """Raise :class:`~simulate.errors.EngineUnavailableError` if it cannot run here."""

    def run(
        self,
        structure: StructureLike,
        settings: SimulationSettings,
        bfactors_nm2: Sequence[float] | None = None,
        progress: ProgressCallback | None = None,
    ) -> MasterResult:
        """Simulate one (structure, B-factor set) at ``settings``."""


def bfactor_attrs(structure: StructureLike, bfactors_nm2: Sequence[float]) -> list[dict[str, Any]]:
    """Per-site B record ``[{element, wyckoff, B_nm2}]`` for the master attrs."""
    return [
        {"element": site.element, "wyckoff": site.wyckoff, "B_nm2": float(b)}
        for site, b in zip(as_record(structure).sites, bfactors_nm2, strict=True)
    ]
