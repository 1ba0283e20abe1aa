"""The simulate engine layer without Ray: settings, structure records, B-factor variants and
the dynamical engine (de-ebsd) at small sizes on CPU."""

from __future__ import annotations

import numpy as np
import pytest
from simulation_fixtures import TINY_SETTINGS

from simulate.engines import get_engine
from simulate.errors import SimulateInputError, StructureError
from simulate.reference_structures import reference_structure
from simulate.settings import SimulationSettings, parse_energy_range
from simulate.structure import build_crystal
from simulate.symmetry import cartesian_point_group, fold_is_consistent
from simulate.variants import RANDOM_B_RANGE_NM2, material_variants

SMALL = TINY_SETTINGS.refine(npx=10, energy_min_kev=18.0, energy_step_kev=2.0, mc_electrons=4000)


def test_default_settings_are_the_papers():
    s = SimulationSettings()
    assert (s.voltage_kv, s.sample_tilt_deg, s.npx, s.dmin_nm) == (20.0, 70.0, 300, 0.05)
    assert s.energies_kev.tolist() == [float(e) for e in range(10, 21)]
    assert s.bethe == {"strong": 8.0, "weak": 50.0, "cutoff": 100.0, "sg_double_nm_inv": 1.0}
    assert (s.depth_max_nm, s.depth_step_nm) == (100.0, 1.0)


def test_settings_from_config_and_flags():
    section = {"npx": 120, "dmin_nm": 0.08, "bethe": [4, 8, 50], "num_electrons": 10}
    s = SimulationSettings.from_config(section, energies="15:20:2.5", device=None)
    assert (s.npx, s.dmin_nm, s.bethe_strong, s.bethe_weak, s.bethe_cutoff) == (
        120,
        0.08,
        4.0,
        8.0,
        50.0,
    )
    assert s.energies_kev.tolist() == [15.0, 17.5, 20.0]
    assert s.mc_electrons == SimulationSettings().mc_electrons  # EMsoft's count not used here
    assert parse_energy_range("20") == {
        "energy_min_kev": 20.0,
        "energy_max_kev": 20.0,
        "energy_step_kev": 1.0,
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"npx": 0}, "npx"),
        ({"energy_max_kev": 25.0}, "energies"),
        ({"bethe_strong": 60.0}, "bethe"),
        ({"engine": "magic"}, "engine"),
        ({"dmin_nm": -1.0}, "dmin_nm"),
    ],
)
def test_bad_settings_name_the_field(changes, field):
    with pytest.raises(SimulateInputError, match=field) as info:
        SimulationSettings().refine(**changes)
    assert "\n" not in str(info.value)


def test_bad_energy_text_is_one_line_error():
    with pytest.raises(SimulateInputError, match="--energies 'ten:20'"):
        SimulationSettings.from_config({}, energies="ten:20")


def test_crystal_keeps_record_setting_and_b():
    si = reference_structure("Si")
    crystal = build_crystal(si, [0.0071])
    assert crystal.space_group == 227 and crystal.origin == 2
    assert crystal.multiplicities == (8,)  # 8a of Fd-3m in the conventional cell
    assert crystal.sites[0].debye_waller == pytest.approx(0.0071)
    garnet = build_crystal(reference_structure("Y3Al5O12"))
    assert sum(garnet.multiplicities) == 160


def test_structure_errors_are_specific():
    ni = reference_structure("Ni")
    del ni["lattice_nm"]["c"]
    with pytest.raises(StructureError, match="Ni: field 'lattice_nm.c'"):
        build_crystal(ni)
    bad = reference_structure("Ni")
    bad["sites"][0]["element"] = "Xq"
    with pytest.raises(StructureError, match="element 'Xq'"):
        build_crystal(bad)
    doubled = reference_structure("Ni")
    doubled["sites"].append({"element": "Ni", "xyz": [0.5, 0.5, 0.0], "B_nm2": 0.005})
    with pytest.raises(StructureError, match="symmetry-equivalent"):
        build_crystal(doubled)
    rhombo = reference_structure("Ni")
    rhombo.update(spacegroup_number=146, setting={"hall_number": 434})
    with pytest.raises(StructureError, match="rhombohedral axes"):
        build_crystal(rhombo)


def test_random_variants_are_reproducible_and_in_range():
    cr3si = reference_structure("Cr3Si")
    first = material_variants("mp-730", cr3si, n_random=3, seed=7)
    again = material_variants("mp-730", cr3si, n_random=3, seed=7)
    other = material_variants("mp-730", cr3si, n_random=3, seed=8)
    assert [v.name for v in first] == ["default", "b01", "b02", "b03"]
    assert first == again and first[1:] != other[1:]
    assert first[0].bfactors_nm2 == (0.005, 0.005)
    low, high = RANDOM_B_RANGE_NM2
    for variant in first[1:]:
        assert len(variant.bfactors_nm2) == 2 and variant.kind == "random"
        assert all(low <= b <= high for b in variant.bfactors_nm2)
    assert len({v.bfactors_nm2 for v in first[1:]}) == 3


@pytest.mark.parametrize(
    ("name", "order", "fold_ok"),
    [("Ni", 48, True), ("Mg", 24, True), ("TiS2", 12, True), ("CuO", 4, False)],
)
def test_point_groups_and_fold_guard(name, order, fold_ok):
    crystal = build_crystal(reference_structure(name))
    ops = cartesian_point_group(crystal)
    assert len(ops) == order
    assert np.allclose(np.einsum("nij,nkj->nik", ops, ops), np.eye(3), atol=1e-9)
    assert fold_is_consistent(crystal) is fold_ok


def test_dynamical_engine_small_master():
    result = get_engine("dynamical").run(reference_structure("Ni"), SMALL)
    assert result.master.dtype == np.float32
    assert result.master.shape == (2, 2, 21, 21)
    assert result.energies_kev.tolist() == [18.0, 20.0]
    assert np.all(result.master > 0) and np.isfinite(result.master).all()
    assert np.all(result.weights > 0) and 0.1 < result.weights.sum() < 0.8
    attrs = result.attrs
    assert attrs["engine"] == "dynamical" and attrs["engine_version"].startswith("de-ebsd ")
    assert attrs["npx"] == 10 and attrs["bethe"]["strong"] == 4.0
    assert attrs["bfactors_nm2"] == [{"element": "Ni", "wyckoff": "a", "B_nm2": 0.0035}]
    assert attrs["symmetry_fold"] is True and attrs["wall_time_s"] > 0


def test_rhombohedral_crystal_simulates():
    """de-ebsd 0.2.1 names rhombohedral centring 'H' and refused it; the adapter reads 'R'
    (simulate.crystal_fixes): corundum's forbidden reflections stay forbidden."""
    crystal = build_crystal(reference_structure("Al2O3"))
    assert crystal.centering == "R"
    allowed = crystal.allowed_by_centering(np.array([[1, 0, 4], [0, 1, 2], [1, 0, 0], [0, 0, 3]]))
    assert allowed.tolist() == [True, True, False, True]
    assert len(cartesian_point_group(crystal)) == 12 and fold_is_consistent(crystal)
    result = get_engine("dynamical").run(reference_structure("Al2O3"), SMALL)
    assert np.isfinite(result.master).all() and result.master.std() > 0


def test_larger_b_factor_weakens_contrast():
    engine = get_engine("dynamical")
    settings = SMALL.refine(energy_min_kev=20.0)
    sharp = engine.run(reference_structure("Si"), settings, [0.002]).master[-1]
    blurred = engine.run(reference_structure("Si"), settings, [0.03]).master[-1]
    contrast = [plane.std() / plane.mean() for plane in (sharp, blurred)]
    assert contrast[1] < 0.8 * contrast[0]


def test_monte_carlo_is_seeded():
    engine = get_engine("dynamical")
    settings = SMALL.refine(energy_min_kev=20.0)
    a = engine.run(reference_structure("Ni"), settings)
    b = engine.run(reference_structure("Ni"), settings)
    c = engine.run(reference_structure("Ni"), settings.refine(mc_seed=5))
    assert np.array_equal(a.weights, b.weights) and not np.array_equal(a.weights, c.weights)
