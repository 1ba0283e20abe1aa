"""Simulation settings shared by every engine, with the paper's values as defaults.

One frozen dataclass holds everything that decides a master pattern (beam, geometry, grid,
reflections, Monte Carlo) so that the same object drives the dynamical engine, the EMsoft
namelists and the attributes recorded with each master in the lake.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulate.errors import SimulateInputError

ENGINES = ("dynamical", "emsoft")
PRECISIONS = ("double", "single")
#: EMsoft's Monte Carlo electron count (``num_electrons``), used by the emsoft engine only.
EMSOFT_ELECTRONS = 2_000_000_000


@dataclass(frozen=True)
class SimulationSettings:
    """Everything that decides one master pattern; defaults are Yan et al. (2025).

    Attributes
    ----------
    engine
        ``"dynamical"`` (de-ebsd, default) or ``"emsoft"`` (EMsoft programs).
    voltage_kv
        Beam energy in keV (accelerating voltage in kV); 20 in the paper.
    energy_min_kev, energy_max_kev, energy_step_kev
        Energy bins of the energy-resolved master (keV): the Monte Carlo histogram and one
        Lambert map per bin. The paper uses 10-20 keV in 1 keV steps.
    sample_tilt_deg
        Sample tilt from the horizontal in degrees (70).
    npx
        Half-width of the square Lambert grid; each hemisphere has ``(2 npx + 1)^2`` pixels.
    dmin_nm
        Smallest interplanar spacing in nm still included as a reflection (0.05).
    bethe_strong, bethe_weak, bethe_cutoff
        Bethe-potential thresholds (strong beam, weak beam, complete cutoff): 8 / 50 / 100.
    bethe_sg_double_nm_inv
        Largest excitation error in nm^-1 kept for double-diffraction (forbidden) reflections.
    depth_max_nm, depth_step_nm
        Exit-depth histogram range and step in nm (100 nm in 1 nm steps).
    mc_electrons
        Incident electrons of the native Monte Carlo (dynamical engine); EMsoft's own
        ``totnum_el`` for the emsoft engine.
    mc_seed
        Seed of the native Monte Carlo, so a re-run reproduces the same master.
    mc_file
        Optional EMsoft ``EMMCOpenCL`` HDF5 file whose Monte Carlo replaces the native one
        (then its energy bins are used and ``energy_*`` are ignored).
    device
        Torch device for the dynamical engine: ``"auto"`` (CUDA when present), ``"cpu"``,
        ``"cuda"``, ``"cuda:1"``...
    precision
        ``"double"`` (complex128, exact against the reference) or ``"single"`` (complex64).
    """

    engine: str = "dynamical"
    voltage_kv: float = 20.0
    energy_min_kev: float = 10.0
    energy_max_kev: float = 20.0
    energy_step_kev: float = 1.0
    sample_tilt_deg: float = 70.0
    npx: int = 300
    dmin_nm: float = 0.05
    bethe_strong: float = 8.0
    bethe_weak: float = 50.0
    bethe_cutoff: float = 100.0
    bethe_sg_double_nm_inv: float = 1.0
    depth_max_nm: float = 100.0
    depth_step_nm: float = 1.0
    mc_electrons: int = 2_000_000
    mc_seed: int = 0
    mc_file: str | None = None
    device: str = "auto"
    precision: str = "double"

    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> None:
        if self.engine not in ENGINES:
            raise SimulateInputError(
                f"setting engine={self.engine!r}: expected one of {', '.join(ENGINES)}"
            )
        if self.precision not in PRECISIONS:
            raise SimulateInputError(
                f"setting precision={self.precision!r}: expected one of {', '.join(PRECISIONS)}"
            )
        positive = {
            "voltage_kv": self.voltage_kv,
            "energy_step_kev": self.energy_step_kev,
            "dmin_nm": self.dmin_nm,
            "depth_max_nm": self.depth_max_nm,
            "depth_step_nm": self.depth_step_nm,
        }
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise SimulateInputError(f"setting {name}={value!r}: must be a positive number")
        if int(self.npx) < 1:
            raise SimulateInputError(f"setting npx={self.npx!r}: must be an integer >= 1")
        if int(self.mc_electrons) < 1:
            raise SimulateInputError(f"setting mc_electrons={self.mc_electrons!r}: must be >= 1")
        if not 0 < self.energy_min_kev <= self.energy_max_kev <= self.voltage_kv:
            raise SimulateInputError(
                f"settings energies {self.energy_min_kev}:{self.energy_max_kev} keV: need "
                f"0 < min <= max <= voltage ({self.voltage_kv} kV)"
            )
        if not 0 < self.bethe_strong < self.bethe_weak <= self.bethe_cutoff:
            raise SimulateInputError(
                f"setting bethe {self.bethe_strong}/{self.bethe_weak}/{self.bethe_cutoff}: "
                "need 0 < strong < weak <= cutoff"
            )
        if not 0 <= self.sample_tilt_deg < 90:
            raise SimulateInputError(
                f"setting sample_tilt_deg={self.sample_tilt_deg!r}: must be in [0, 90) degrees"
            )

    @property
    def energies_kev(self) -> np.ndarray:
        """Energy bin centres in keV, ascending (``energy_min_kev`` to ``energy_max_kev``)."""
        n = int(round((self.energy_max_kev - self.energy_min_kev) / self.energy_step_kev)) + 1
        return self.energy_min_kev + self.energy_step_kev * np.arange(n)

    @property
    def bethe(self) -> dict[str, float]:
        """The Bethe thresholds as a dict (strong, weak, cutoff, sg_double in nm^-1)."""
        return {
            "strong": float(self.bethe_strong),
            "weak": float(self.bethe_weak),
            "cutoff": float(self.bethe_cutoff),
            "sg_double_nm_inv": float(self.bethe_sg_double_nm_inv),
        }

    def at_voltage(self, voltage_kv: float) -> SimulationSettings:
        """These settings at another beam energy, with the energy bins moved along: the same
        bins relative to the beam (15-20 keV for 20 kV become 25-30 keV for 30 kV)."""
        shift = float(voltage_kv) - float(self.voltage_kv)
        return self.refine(
            voltage_kv=float(voltage_kv),
            energy_min_kev=self.energy_min_kev + shift,
            energy_max_kev=self.energy_max_kev + shift,
        )

    def refine(self, **changes: Any) -> SimulationSettings:
        """A copy with ``changes`` applied (validated again); unknown names raise."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise SimulateInputError(f"unknown simulation settings: {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def to_attrs(self) -> dict[str, Any]:
        """The settings as JSON-ready master attributes (units in the key names)."""
        return {
            "engine": self.engine,
            "voltage_kv": float(self.voltage_kv),
            "energy_min_kev": float(self.energy_min_kev),
            "energy_max_kev": float(self.energy_max_kev),
            "energy_step_kev": float(self.energy_step_kev),
            "sample_tilt_deg": float(self.sample_tilt_deg),
            "npx": int(self.npx),
            "dmin_nm": float(self.dmin_nm),
            "bethe": self.bethe,
            "depth_max_nm": float(self.depth_max_nm),
            "depth_step_nm": float(self.depth_step_nm),
            "mc_electrons": int(self.mc_electrons),
            "mc_seed": int(self.mc_seed),
            "mc_file": self.mc_file,
            "engine_precision": self.precision,
        }

    @classmethod
    def from_config(
        cls, section: Mapping[str, Any] | None = None, **overrides: Any
    ) -> SimulationSettings:
        """Settings from the ``[simulate]`` config section, then ``overrides`` (not None).

        Understands the keys of :func:`simulate.config_section.config_section_defaults`
        (``bethe`` as a list of 2-4 numbers, ``dmin_nm``, ...). ``num_electrons`` there is EMsoft's electron count
        and only used by the emsoft engine; the native Monte Carlo reads ``mc_electrons``.
        """
        section = dict(section or {})
        values: dict[str, Any] = {}
        names = {f.name for f in dataclasses.fields(cls)}
        for key, value in section.items():
            if key in names:
                values[key] = value
        bethe = section.get("bethe")
        if bethe is not None:
            values.update(_bethe_fields(bethe))
        if section.get("engine") == "emsoft" and "num_electrons" in section:
            values.setdefault("mc_electrons", int(section["num_electrons"]))
        for key, value in overrides.items():
            if value is None:
                continue
            if key == "bethe":
                values.update(_bethe_fields(value))
            elif key == "energies":
                values.update(parse_energy_range(value))
            elif key in names:
                values[key] = value
            else:
                raise SimulateInputError(f"unknown simulation setting {key!r}")
        if values.get("device") in ("", None):
            values["device"] = "auto"
        try:
            return cls(**values)
        except TypeError as exc:
            raise SimulateInputError(f"simulation settings: {exc}") from None


def _bethe_fields(values: Any) -> dict[str, float]:
    numbers = list(values) if not isinstance(values, (int, float)) else [values]
    if not 2 <= len(numbers) <= 4:
        raise SimulateInputError(
            f"setting bethe={values!r}: give 2-4 numbers: strong weak [cutoff [sg_double]]"
        )
    try:
        floats = [float(v) for v in numbers]
    except (TypeError, ValueError):
        raise SimulateInputError(f"setting bethe={values!r}: not numbers") from None
    keys = ("bethe_strong", "bethe_weak", "bethe_cutoff", "bethe_sg_double_nm_inv")
    out = dict(zip(keys, floats, strict=False))
    out.setdefault("bethe_cutoff", max(out["bethe_weak"], 100.0))
    return out


def parse_energy_range(text: str) -> dict[str, float]:
    """Parse ``"MIN:MAX:STEP"`` (keV) or ``"MIN:MAX"`` (1 keV steps) or one energy ``"E"``.

    Returns the ``energy_min_kev``, ``energy_max_kev`` and ``energy_step_kev`` fields.
    """
    parts = str(text).split(":")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise SimulateInputError(
            f"--energies {text!r}: expected MIN:MAX:STEP in keV, e.g. 10:20:1"
        ) from None
    if len(numbers) == 1:
        numbers = [numbers[0], numbers[0], 1.0]
    elif len(numbers) == 2:
        numbers.append(1.0)
    elif len(numbers) != 3:
        raise SimulateInputError(f"--energies {text!r}: expected MIN:MAX:STEP in keV")
    low, high, step = numbers
    return {"energy_min_kev": low, "energy_max_kev": high, "energy_step_kev": step}
