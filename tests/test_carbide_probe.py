"""scripts/carbide_probe.py: rock-salt carbides and nitrides built at their lattice parameters,
labelled by spglib (true Fm-3m, disordered Pm-3m), and the prototypes a model trained on."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from carbide_probe import main, probe_records, trained_formulas  # noqa: E402


def test_probe_phases_are_rock_salt_with_the_disordered_label():
    zrc, tan = probe_records(["ZrC", "TaN"])
    assert zrc.material_id == "probe-B1-ZrC"
    assert zrc.labels.spacegroup_number == 225  # NaCl
    assert zrc.disordered.spacegroup_number == 221  # one element on both sites: a/2 sc
    assert zrc.structure.lattice.a == pytest.approx(4.698, abs=1e-3)
    assert sorted(str(e) for e in tan.structure.composition.elements) == ["N", "Ta"]
    assert tan.provenance["structure_type"] == "B1"


def test_trained_on_means_the_prototype_was_in_training():
    card = {"training": {"train_ids": ["proto-TiC", "dec-B1-ZrW-6"], "val_ids": ["proto-NbC"]}}
    assert trained_formulas(card) == {"TiC", "NbC"}


def test_a_model_that_is_not_there_is_one_line(tmp_path, capsys):
    assert main(["--model", "nope", "--lake", str(tmp_path / "l"), "--out", "x.json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope" in err


def test_the_recorded_probe_names_each_phase_once():
    """The committed figures (docs/RESULTS.md) hold one row per phase with its calls."""
    root = Path(__file__).resolve().parents[1] / "docs" / "figures" / "carbide-probe"
    for name in ("cubic-lab.json", "cubic-lab-types.json"):
        rows = json.loads((root / name).read_text())["rows"]
        assert len({r["formula"] for r in rows}) == len(rows) == 12
        for row in rows:
            assert sum(row["calls"].values()) == 100
            assert row["accuracy"] == pytest.approx(row["calls"].get("Pm-3m", 0) / 100)
