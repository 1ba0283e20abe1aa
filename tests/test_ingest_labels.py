"""Labels, settings and the stored record: the paper's Table 1 is the oracle."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from ingest.errors import DisorderedStructureError, IngestError
from ingest.labels import disordered_labels, symmetry_labels
from ingest.prototypes import load_prototypes, prototype_table
from ingest.record import StructureRecord, build_record, structure_from_lake
from ingest.spacegroups import TWO_ORIGIN_GROUPS, parse_space_groups, stored_hall_number
from ingest.standardize import spglib_cell

# Yan et al. 2025, Table 1: composition -> (true space group, label after disordering)
TABLE_1 = {
    "FeNi3": ("Pm-3m", "Fm-3m"),
    "Ni3Al": ("Pm-3m", "Fm-3m"),
    "NiAl": ("Pm-3m", "Im-3m"),
    "FeAl": ("Pm-3m", "Im-3m"),
    "Mo3Si": ("Pm-3n", "Pm-3n"),
    "Cr3Si": ("Pm-3n", "Pm-3n"),
    "TaC": ("Fm-3m", "Pm-3m"),
    "NbC": ("Fm-3m", "Pm-3m"),
    "TiC": ("Fm-3m", "Pm-3m"),
    "Ni": ("Fm-3m", "Fm-3m"),
    "Al": ("Fm-3m", "Fm-3m"),
    "Ge": ("Fd-3m", "Fd-3m"),
    "Si": ("Fd-3m", "Fd-3m"),
    "W": ("Im-3m", "Im-3m"),
    "Ta": ("Im-3m", "Im-3m"),
    "Fe": ("Im-3m", "Im-3m"),
}


@pytest.fixture(scope="module")
def prototypes() -> dict[str, StructureRecord]:
    return {r.name: r for r in load_prototypes()}


def test_table_1_true_and_disordered_labels(prototypes):
    assert set(prototypes) == set(TABLE_1)
    found = {
        name: (r.labels.spacegroup_symbol, r.disordered.spacegroup_symbol)
        for name, r in prototypes.items()
    }
    assert found == TABLE_1


def test_excluded_phases_are_listed_with_reasons():
    excluded = prototype_table()["excluded"]
    assert set(excluded) == {"Al4Ni3", "Al4CoNi2"} and all(len(v) > 40 for v in excluded.values())
    with pytest.raises(IngestError, match="Al4Ni3.*valid: FeNi3"):
        list(load_prototypes(["Al4Ni3"]))


def test_label_sets_are_complete(prototypes):
    nial = prototypes["NiAl"]
    assert (nial.labels.point_group, nial.labels.crystal_system) == ("m-3m", "cubic")
    assert (nial.labels.bravais_lattice, nial.disordered.bravais_lattice) == ("cP", "cI")
    assert prototypes["TaC"].disordered.bravais_lattice == "cP"


def test_symmetry_tolerance_is_a_parameter():
    # B2 with the Al atom displaced by 0.02 A: ordered-disordered labels change with symprec
    lattice = Lattice.cubic(2.887)
    shifted = Structure(lattice, ["Ni", "Ni"], [[0, 0, 0], [0.5, 0.5, 0.5 + 0.02 / 2.887]])
    cell = spglib_cell(shifted)
    assert disordered_labels(cell, symprec=0.05).spacegroup_symbol == "Im-3m"
    assert disordered_labels(cell, symprec=0.001).spacegroup_number < 229
    assert symmetry_labels(cell, symprec=0.05).spacegroup_number == 229


def test_stored_attrs_follow_the_contract(prototypes):
    cif, attrs = prototypes["Si"].to_lake()
    assert attrs["spacegroup_number"] == 227 and attrs["disordered_spacegroup_symbol"] == "Fd-3m"
    assert attrs["setting"]["origin_choice"] == 2 and attrs["setting"]["hall_number"] == 526
    assert attrs["lattice_nm"]["a"] == pytest.approx(0.54307)
    assert attrs["volume_nm3"] == pytest.approx(0.54307**3)
    assert attrs["sites"] == [
        {
            "element": "Si",
            "wyckoff": "a",
            "multiplicity": 8,
            "xyz": [0.125, 0.125, 0.125],
            "occupancy": 1.0,
            "B_nm2": 0.005,
        }
    ]
    assert "_space_group_IT_coordinate_system_code '2'" in cif
    assert "_space_group_name_Hall '-F 4vw 2vw 3'" in cif
    back = StructureRecord.from_lake("proto-Si", {**attrs, "cif": cif})
    assert back.labels == prototypes["Si"].labels and back.sites == prototypes["Si"].sites
    assert len(structure_from_lake({**attrs, "cif": cif})) == 8


def test_any_input_setting_is_normalised_to_the_stored_one():
    # diamond Si given in origin choice 1 (atoms at 0,0,0 and 1/4,1/4,1/4) -> stored origin 2
    origin_1 = Structure.from_spacegroup(
        227, Lattice.cubic(5.4307), ["Si"], [[0, 0, 0]], tol=1e-4
    )  # pymatgen's 227 is ITA origin choice 1
    record = build_record("si-o1", origin_1, "cif")
    assert record.setting["origin_choice"] == 2
    assert record.sites[0].xyz == (0.125, 0.125, 0.125)


def test_engine_crystal_reproduces_the_stored_structure(prototypes):
    from lake import StructureRecord
    from simulate.structure import build_crystal

    for name in ("Si", "Ni3Al", "Cr3Si", "TaC", "W"):
        cif, attrs = prototypes[name].to_lake()
        record = StructureRecord.from_attrs(prototypes[name].material_id, {**attrs, "cif": cif})
        crystal = build_crystal(record)
        assert sum(crystal.multiplicities) == len(prototypes[name].structure)
        assert crystal.density == pytest.approx(prototypes[name].structure.density, rel=1e-4)


@pytest.mark.parametrize("group", sorted(TWO_ORIGIN_GROUPS) + [166, 15, 14])
def test_stored_setting_matches_the_engine_operators(group):
    """de-ebsd expands sites with diffpy's operators in the origin ingest stores: both must be
    the same operator set, or simulations silently use another crystal."""
    import spglib
    from de_ebsd.crystal.lattice import _symmetry_operations
    from diffpy.structure.spacegroups import GetSpaceGroup

    from ingest.spacegroups import origin_choice

    hall = stored_hall_number(group)
    ops = spglib.get_symmetry_from_database(hall)

    def canonical(pairs):
        return sorted(
            (tuple(np.asarray(r, int).ravel()), tuple(np.round(np.mod(t, 1), 4) % 1))
            for r, t in pairs
        )

    ours = canonical(zip(ops["rotations"], ops["translations"], strict=True))
    engine = canonical(_symmetry_operations(GetSpaceGroup(group), origin_choice(group) or 1))
    assert ours == engine


def test_engine_reads_the_stored_cif(tmp_path, prototypes):
    from de_ebsd.crystal import Crystal

    cif, _ = prototypes["Si"].to_lake()
    path = tmp_path / "si.cif"
    path.write_text(cif)
    crystal = Crystal.from_cif(str(path))
    assert crystal.space_group == 227 and crystal.origin == 2
    assert sum(crystal.multiplicities) == 8
    assert crystal.sites[0].debye_waller == pytest.approx(0.005, rel=1e-3)


def test_disordered_and_unknown_element_refused():
    mixed = Structure(Lattice.cubic(3.0), [{"Fe": 0.5, "Ni": 0.5}], [[0, 0, 0]])
    with pytest.raises(DisorderedStructureError, match="x: site .*partially occupied"):
        build_record("x", mixed, "cif")
    with pytest.raises(IngestError, match="unknown source"):
        build_record("x", Structure(Lattice.cubic(3), ["Fe"], [[0, 0, 0]]), "web")


def test_space_group_parsing_names_the_valid_range():
    assert parse_space_groups("221,225, 1-3") == [1, 2, 3, 221, 225]
    for bad in ("0-5", "231", "a-b", "10-5", ""):
        with pytest.raises(IngestError, match="1-230"):
            parse_space_groups(bad)
