"""Simulation settings shared by the simulate tests: the real engine at sizes a 2-core CI box
runs in seconds.

Import with ``from simulation_fixtures import TINY_SETTINGS`` (tests/ is on sys.path under
pytest) and derive a test's own sizes with ``TINY_SETTINGS.refine(...)``.
"""

from __future__ import annotations

from simulate.settings import SimulationSettings

#: npx 8 (17x17 per hemisphere), dmin 0.15 nm, one 20 keV plane, 3000 Monte Carlo electrons,
#: Bethe 4/8/50, on the CPU: a master in well under a second.
TINY_SETTINGS = SimulationSettings(
    npx=8,
    dmin_nm=0.15,
    energy_min_kev=20.0,
    energy_max_kev=20.0,
    mc_electrons=3000,
    bethe_strong=4.0,
    bethe_weak=8.0,
    bethe_cutoff=50.0,
    device="cpu",
)
