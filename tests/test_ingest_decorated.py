"""Decorated cubic structure types: true and disordered labels, determinism, CLI and errors."""

from __future__ import annotations

import pytest

from infra.app.cli import main
from ingest.errors import IngestError
from ingest.structure_types import (
    STRUCTURE_TYPES,
    decorated_structure,
    generate_decorated,
    parse_structure_types,
)


def test_every_type_has_its_true_and_disordered_space_group():
    """spglib (through build_record) finds the type's group for the decorated crystal and the
    table's parent group for the one-element crystal, for every bundled type."""
    records = list(generate_decorated(parse_structure_types(None), per_type=2, seed=5))
    assert len(records) == 2 * len(STRUCTURE_TYPES)
    for record in records:
        stype = STRUCTURE_TYPES[record.provenance["structure_type"]]
        assert record.labels.spacegroup_number == stype.space_group, record.material_id
        assert record.disordered.spacegroup_number == stype.disordered, record.material_id
        roles = record.provenance["roles"]
        assert len(set(roles.values())) == len(roles), "roles must get distinct elements"
    changed = {r.provenance["structure_type"] for r in records
               if r.labels.spacegroup_number != r.disordered.spacegroup_number}  # fmt: skip
    assert changed == {"L1_2", "B2", "B1", "B3", "D0_3", "L2_1"}


def test_volume_per_atom_sets_the_cell():
    stype = STRUCTURE_TYPES["L2_1"]
    structure = decorated_structure(stype, {"A": "Co", "B": "Mn", "C": "Fe"}, 12.0)
    assert len(structure) == 16
    assert structure.volume / len(structure) == pytest.approx(12.0)
    assert structure.composition.reduced_formula == "MnFeCo2"


def test_generation_is_deterministic_and_distinct():
    types = parse_structure_types(["B2", "A1"])
    first = [r.material_id for r in generate_decorated(types, per_type=10, seed=1)]
    again = [r.material_id for r in generate_decorated(types, per_type=10, seed=1)]
    other = [r.material_id for r in generate_decorated(types, per_type=10, seed=2)]
    assert first == again and first != other
    assert len(set(first)) == 20  # A1 repeats elements (8 in the pool) but not ids


def test_bad_input_is_named(tmp_path, capsys):
    with pytest.raises(IngestError, match="unknown structure type 'L1_0'.*valid: A1"):
        parse_structure_types(["L1_0"])
    with pytest.raises(IngestError, match="--elements"):
        list(generate_decorated(parse_structure_types(["B2"]), 1, 0, elements=["Xx", "Fe"]))
    rejected: list[tuple[str, str]] = []
    kept = list(generate_decorated(parse_structure_types(["L2_1", "B2"]), 1, 0,
                                   elements=["Fe", "Ni"], on_reject=lambda *r: rejected.append(r)))  # fmt: skip
    assert [r.provenance["structure_type"] for r in kept] == ["B2"]
    assert rejected == [("dec-L2_1", "needs 3 distinct elements, the pool has 2")]

    lake = str(tmp_path / "lake")
    assert main(["--lake", lake, "ingest", "decorated", "--types", "B3", "L1_2",
                 "--per-type", "2", "--elements", "Fe", "Co", "Ni"]) == 0  # fmt: skip
    assert "ingested 4, skipped 0 existing, rejected 0" in capsys.readouterr().out
    assert main(["--lake", lake, "ingest", "decorated", "--types", "B3", "L1_2",
                 "--per-type", "2", "--elements", "Fe", "Co", "Ni"]) == 0  # fmt: skip
    assert "ingested 0, skipped 4 existing" in capsys.readouterr().out
    assert main(["--lake", lake, "ingest", "decorated", "--types", "Q9"]) == 2
    err = capsys.readouterr().err
    assert "unknown structure type 'Q9'" in err and "Traceback" not in err

    from lake import Lake

    catalog = Lake.open(lake).catalog()
    assert set(catalog["source"]) == {"decorated"}
    assert sorted(catalog["disordered_spacegroup_number"]) == [225, 225, 227, 227]
