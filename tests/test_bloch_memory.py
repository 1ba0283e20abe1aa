"""The Bloch-wave memory guard: batches sized to the budget, identical masters, clear refusals."""

from __future__ import annotations

import numpy as np
import pytest

from simulate.bloch_memory import (
    BUDGET_ENV,
    beam_counts,
    memory_budget_bytes,
    plan_batches,
    sample_directions,
)
from simulate.engine_dynamical import DynamicalEngine, bethe_parameters
from simulate.errors import SimulateInputError
from simulate.reference_structures import reference_structure
from simulate.settings import SimulationSettings

SETTINGS = SimulationSettings(
    npx=64, dmin_nm=0.1, energy_min_kev=20.0, energy_max_kev=20.0,
    bethe_strong=4.0, bethe_weak=8.0, bethe_cutoff=50.0,
)  # fmt: skip


def needle_simulator():
    """The cell that took a campaign's node down: P6_122, a 1.83 nm, c 0.18 nm (issue 16)."""
    from de_ebsd import AtomSite, Crystal, MasterPatternSimulator, Microscope

    crystal = Crystal(
        1.83, 1.83, 0.18, 90, 90, 120, space_group=178,
        sites=[AtomSite("W", (0.3, 0.0, 0.0)), AtomSite("Al", (0.1, 0.2, 0.05))],
    )  # fmt: skip
    return MasterPatternSimulator(
        crystal, Microscope(energy=20e3, sample_tilt=70.0), npx=64, dmin=0.1,
        bethe=bethe_parameters(SETTINGS),
    )  # fmt: skip


def test_needle_cell_batches_shrink_to_fit_the_budget():
    counts = beam_counts(needle_simulator(), sample_directions())
    assert counts.strong > 200  # hundreds of strong beams near the short axis
    budget = int(6e9)
    plan = plan_batches(counts, budget)
    default_solve_bytes = 4096 * counts.strong**2 * 8 * 8
    assert default_solve_bytes > 3 * budget  # what de-ebsd's defaults would have asked for
    assert plan.matmul_batch < 4096 and plan.class_chunk < 1024
    assert plan.peak_bytes <= budget


def test_ordinary_cell_keeps_de_ebsd_batches():
    from de_ebsd import MasterPatternSimulator, Microscope

    from simulate.structure import build_crystal

    crystal = build_crystal(reference_structure("Ni"), None)
    simulator = MasterPatternSimulator(
        crystal, Microscope(energy=20e3, sample_tilt=70.0), npx=64, dmin=0.1,
        bethe=bethe_parameters(SETTINGS),
    )  # fmt: skip
    plan = plan_batches(beam_counts(simulator, sample_directions()), int(6e9))
    assert (plan.class_chunk, plan.block, plan.matmul_batch) == (1024, 65536, 4096)


def test_one_direction_over_budget_is_refused_with_sizes():
    counts = beam_counts(needle_simulator(), sample_directions(16))
    with pytest.raises(SimulateInputError, match=r"too large for this node: .* strong beams"):
        plan_batches(counts, budget_bytes=1_000_000)


def test_budget_from_environment(monkeypatch):
    monkeypatch.setenv(BUDGET_ENV, "1.5")
    assert memory_budget_bytes() == 1_500_000_000
    monkeypatch.setenv(BUDGET_ENV, "lots")
    with pytest.raises(SimulateInputError, match=BUDGET_ENV):
        memory_budget_bytes()
    monkeypatch.delenv(BUDGET_ENV)
    assert memory_budget_bytes() > 0


def test_small_batches_give_the_same_master(monkeypatch):
    settings = SimulationSettings(
        npx=12, dmin_nm=0.15, energy_min_kev=20.0, energy_max_kev=20.0, mc_electrons=4_000
    )
    engine = DynamicalEngine()
    roomy = engine.run(reference_structure("Ni"), settings)
    monkeypatch.setenv(BUDGET_ENV, "0.0002")  # 200 kB: a few directions per batch
    tight = engine.run(reference_structure("Ni"), settings)
    assert tight.attrs["bloch_batches"][2] < roomy.attrs["bloch_batches"][2]
    assert tight.attrs["bloch_peak_estimate_bytes"] <= 200_000
    assert roomy.attrs["bloch_peak_estimate_bytes"] > 200_000  # the budget did bind
    np.testing.assert_allclose(tight.master, roomy.master, rtol=1e-5, atol=1e-7)
