"""StructureRecord: the one typed reader of stored structure attributes (labels, lattice in nm,
sites with B in nm^2, setting), and its one-line errors naming the material and the field."""

from __future__ import annotations

import pytest

from lake import Lake, LakeFormatError, MissingLabelError, StructureRecord

ATTRS = {
    "formula": "AlNi",
    "source": "prototype",
    "spacegroup_number": 221,
    "spacegroup_symbol": "Pm-3m",
    "point_group": "m-3m",
    "crystal_system": "cubic",
    "bravais_lattice": "cP",
    "disordered_spacegroup_number": 229,
    "disordered_spacegroup_symbol": "Im-3m",
    "disordered_point_group": "m-3m",
    "setting": {"hall_number": 517, "origin_choice": None},
    "lattice_nm": {"a": 0.288, "b": 0.288, "c": 0.288, "alpha": 90, "beta": 90, "gamma": 90},
    "sites": [
        {"element": "Al", "wyckoff": "a", "multiplicity": 1, "xyz": [0, 0, 0], "B_nm2": 0.006},
        {"element": "Ni", "wyckoff": "b", "xyz": [0.5, 0.5, 0.5], "occupancy": 1.0},
    ],
}


def test_fields_and_labels_are_typed():
    record = StructureRecord.from_attrs("proto-NiAl", ATTRS)
    assert record.spacegroup_number == 221 and record.disordered_spacegroup_number == 229
    assert record.disordered_spacegroup_symbol == "Im-3m" and record.bravais_lattice == "cP"
    assert record.lattice_nm["a"] == pytest.approx(0.288) and record.lattice_nm["alpha"] == 90.0
    assert [s.element for s in record.sites] == ["Al", "Ni"]
    assert record.sites[0].B_nm2 == 0.006 and record.sites[1].B_nm2 is None
    assert record.sites[0].multiplicity == 1 and record.sites[1].wyckoff == "b"
    assert record.origin_choice == 2 and record.hall_number == 517 and record.name == "proto-NiAl"
    assert record.label("disordered_spacegroup_number") == 229
    assert record.label("disordered_point_group") == "m-3m"


def test_missing_label_names_material_and_key():
    record = StructureRecord.from_attrs("proto-NiAl", ATTRS)
    with pytest.raises(MissingLabelError) as info:
        record.label("disordered_bravais_lattice")
    assert str(info.value) == (
        "structure 'proto-NiAl': no label attribute 'disordered_bravais_lattice'"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lattice_nm": None}, "x: field 'lattice_nm' is missing"),
        ({"lattice_nm": {"a": 1}}, "x: field 'lattice_nm.b' is missing or not a number"),
        ({"sites": None}, "x: field 'sites' is missing"),
        ({"sites": [{"element": "Ni"}]}, "x: site 0 field 'xyz' is missing or not numbers"),
        ({"sites": [{"xyz": [0, 0]}]}, "x: site 0 field 'xyz' must be 3 finite numbers"),
        ({"sites": [{"xyz": [0, 0, 0], "occupancy": 2}]}, "x: site 0 occupancy 2.0 is not in"),
        ({"spacegroup_number": 231}, "x: field 'spacegroup_number' is 231, not 1-230"),
    ],
)
def test_malformed_fields_are_one_line_errors(change, message):
    with pytest.raises(LakeFormatError) as info:
        StructureRecord.from_attrs("x", {**ATTRS, **change}).require_geometry()
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_a_record_kept_for_its_labels_reads_without_geometry():
    """Labels are read without a lattice or sites (a stream's label-only records); a
    simulation asks for the geometry and is refused by name."""
    record = StructureRecord.from_attrs("x", {"disordered_spacegroup_number": 225})
    assert record.label("disordered_spacegroup_number") == 225
    assert record.lattice_nm is None and record.sites is None
    with pytest.raises(LakeFormatError, match="x: field 'lattice_nm' is missing"):
        record.require_geometry()


def test_lake_reads_a_record(tmp_path):
    lake = Lake.open(str(tmp_path / "lake.zarr"), create=True)
    lake.put_structure("proto-NiAl", cif="data_x\n", attrs=ATTRS)
    record = lake.structure_record("proto-NiAl")
    assert record.material_id == "proto-NiAl" and record.attrs["cif"] == "data_x\n"
    assert record.label("spacegroup_symbol") == "Pm-3m"
