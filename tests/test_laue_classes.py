"""Laue classes and crystal systems: derived from the stored point group, consistent with the
space-group table; whole space groups held out per Laue class; calls scored at a coarser
label."""

from __future__ import annotations

import pytest

from lake.laue_classes import (
    LAUE_CLASS_MEMBERS,
    LAUE_CLASS_SPACE_GROUPS,
    crystal_system_of_laue,
    laue_class,
    laue_class_of_space_group,
)
from train.errors import TrainingError
from train.runs.scores import regrouped, score
from train.runs.unseen_groups import choose_unseen_groups, split_by_groups


def test_every_space_group_is_in_the_laue_class_of_its_point_group():
    from pyxtal.symmetry import Group

    for number in range(1, 231):
        point_group = Group(number).point_group
        assert laue_class(point_group) == laue_class_of_space_group(number), number
    assert sum(len(members) for members in LAUE_CLASS_SPACE_GROUPS.values()) == 230
    assert len({pg for members in LAUE_CLASS_MEMBERS.values() for pg in members}) >= 32


def test_crystal_system_of_each_laue_class_and_errors():
    assert crystal_system_of_laue("-3m") == "trigonal"
    assert crystal_system_of_laue("6/m") == "hexagonal"
    assert laue_class("-43m") == "m-3m" and laue_class("mm2") == "mmm"
    with pytest.raises(ValueError, match="'-5': not one of the 32"):
        laue_class("-5")
    with pytest.raises(ValueError, match="space group 231: not in 1-230"):
        laue_class_of_space_group(231)
    with pytest.raises(ValueError, match="Laue class 'm3': not one of"):
        crystal_system_of_laue("m3")


def test_lake_structures_carry_true_and_disordered_laue_class(local_lake):
    from pymatgen.core import Lattice, Structure

    from ingest.cif import read_cifs
    from ingest.noncubic import noncubic_cif
    from ingest.prototypes import load_prototypes
    from ingest.record import build_record
    from ingest.writer import ingest
    from lake import Lake

    url, options = local_lake
    lake = Lake.open(url, options, create=True)
    # CuAu L1_0: tetragonal P4/mmm with c/a = sqrt(2); with Cu and Au alike it is fcc
    cuau = Structure(Lattice.tetragonal(3.8 / 2**0.5, 3.8), ["Cu", "Au"], [[0, 0, 0], [0.5] * 3])
    records = [build_record("cif-CuAu", cuau, "cif", {}), *load_prototypes(only=["Ni"])]
    ingest(lake, records, progress=False)
    ingest(lake, read_cifs([noncubic_cif("Mg"), noncubic_cif("TiO2")]), progress=False)
    by_formula = {
        lake.structure(m)["formula"]: lake.structure_record(m) for m in lake.structure_ids()
    }
    assert by_formula["Ni"].label("laue_class") == "m-3m"
    assert by_formula["Mg"].label("laue_class") == "6/mmm"
    assert by_formula["TiO2"].label("laue_class") == "4/mmm"
    assert by_formula["CuAu"].label("laue_class") == "4/mmm"
    assert by_formula["CuAu"].label("disordered_laue_class") == "m-3m"


def test_unseen_groups_are_stratified_seeded_and_leave_each_class_trained():
    chosen = choose_unseen_groups(0.15, seed=3)
    assert chosen == choose_unseen_groups(0.15, seed=3) != choose_unseen_groups(0.15, seed=4)
    for laue, numbers in LAUE_CLASS_SPACE_GROUPS.items():
        held = [n for n in chosen if n in numbers]
        assert 1 <= len(held) < len(numbers), laue
    assert len(chosen) == sum(
        min(max(1, round(0.15 * len(n))), len(n) - 1) for n in LAUE_CLASS_SPACE_GROUPS.values()
    )
    # only groups the training set has are candidates; a class with one of them keeps it
    few = choose_unseen_groups(0.15, seed=3, candidates=[1, 2, 139, 221, 225])
    assert 139 not in few and len(set(few) & {1, 2}) == 1 and len(set(few) & {221, 225}) == 1
    assert choose_unseen_groups(0.0, seed=3) == []
    with pytest.raises(TrainingError, match="unseen group fraction 1.0: must be in"):
        choose_unseen_groups(1.0, seed=3)
    seen, unseen = split_by_groups(["a", "b", "c"], [225, 194, 225], [225])
    assert seen == ["b"] and unseen == ["a", "c"]


def test_a_laue_class_call_in_the_right_system_counts_at_the_coarser_label():
    classes = ["6/m", "6/mmm", "m-3m"]
    true = ["6/m", "6/m", "m-3m", "6/mmm"]
    predicted = ["6/mmm", "6/m", "6/m", "6/mmm"]
    fine = score("run", classes, true, predicted, ["a", "a", "b", "c"])
    coarse = regrouped(fine, crystal_system_of_laue, ["hexagonal", "cubic"])
    assert fine.accuracy == pytest.approx(0.5)
    assert coarse.accuracy == pytest.approx(0.75)
    assert coarse.per_material == {"a": 1.0, "b": 0.0, "c": 1.0}
    assert coarse.confusion.tolist() == [[3, 0], [1, 0]]
