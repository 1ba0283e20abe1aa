"""Physics checks of the dynamical engine (small sizes, CPU): agreement with EMsoft's Ni
master pattern and point-group invariance for one structure of each crystal system."""

from __future__ import annotations

import numpy as np
import pytest
from simulation_fixtures import TINY_SETTINGS

from simulate.checks import direction_intensities, grid_invariance
from simulate.engines import get_engine
from simulate.reference_structures import CRYSTAL_SYSTEM_EXAMPLES, reference_structure
from simulate.structure import build_crystal
from simulate.symmetry import cartesian_point_group
from simulate.validation import compare_with_emsoft, pearson

SYMMETRY_SETTINGS = TINY_SETTINGS.refine(npx=16, dmin_nm=0.12)


def test_agrees_with_emsoft_ni_master(kikuchipy_ni_file):
    """The file's settings (Bethe 4/8/50, dmin 0.05 nm, 20 keV, its Monte Carlo) on its whole
    npx=200 grid (321,602 directions, both hemispheres; ~10-20 s on 2 CPUs thanks to the
    Fm-3m fold), as scripts/validate_emsoft_ni.py runs it."""
    result = compare_with_emsoft(kikuchipy_ni_file, stride=1, device="cpu")
    assert result["npx_compared"] == 200 and result["pixels_compared"] == 2 * 401 * 401
    assert result["settings"]["bethe"]["strong"] == 4.0 and result["settings"]["dmin_nm"] == 0.05
    assert result["pearson_north"] >= 0.999
    assert result["pearson_south"] >= 0.999


@pytest.mark.parametrize("system", sorted(CRYSTAL_SYSTEM_EXAMPLES))
def test_master_is_invariant_under_point_group(system):
    structure = reference_structure(CRYSTAL_SYSTEM_EXAMPLES[system])
    ops = cartesian_point_group(build_crystal(structure))
    rng = np.random.default_rng(1)
    k = rng.normal(size=(40, 3))
    images = np.concatenate([k @ op.T for op in ops])
    values = direction_intensities(structure, SYMMETRY_SETTINGS, images).reshape(len(ops), -1)
    assert values[0].std() > 0.01 * values[0].mean()  # a pattern with contrast
    for index in range(1, len(ops)):
        assert pearson(values[0], values[index]) >= 0.99, f"{system}: operator {index}"

    master = get_engine("dynamical").run(structure, SYMMETRY_SETTINGS).master[-1]
    checked = grid_invariance(master, ops)
    assert len(checked) >= 2
    for op, r in checked:
        assert r >= 0.99, f"{system}: grid operator {op.round(3).tolist()} r={r:.4f}"
