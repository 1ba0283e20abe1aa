"""scripts/start_overlap.py: a package started from another's network is read again on the
materials that network never saw, from the cards' per-material figures and a real lake's
crystal systems."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


@pytest.fixture(scope="module")
def small_lake(tmp_path_factory) -> tuple[str, dict[str, str]]:
    """A lake with Ni and Al (cubic), Mg (hexagonal) and rutile (tetragonal): ids by name."""
    from ingest.cif import read_cifs
    from ingest.noncubic import noncubic_cif, noncubic_names
    from ingest.prototypes import load_prototypes
    from ingest.writer import IngestReport, ingest
    from lake import Lake

    url = str(tmp_path_factory.mktemp("overlap") / "lake.zarr")
    lake = Lake.open(url, create=True)
    report = IngestReport()
    ingest(lake, load_prototypes(("Ni", "Al"), on_reject=report.reject), report)
    ingest(lake, read_cifs([noncubic_cif(n) for n in noncubic_names()]), report)
    ids = {}
    for material in lake.structure_ids():
        system = lake.structure_record(material).label("crystal_system")
        ids[material.split("-")[1] if system == "cubic" else system] = material
    return url, ids


def _package(folder: Path, card: dict) -> str:
    folder.mkdir()
    (folder / "card.json").write_text(json.dumps(card))
    return str(folder)


def test_subsets_drop_the_start_s_materials_then_its_crystal_systems(small_lake, tmp_path):
    from start_overlap import main, overlap_table

    from train.runs.run import open_lake

    url, ids = small_lake
    ni, al, mg, rutile = ids["Ni"], ids["Al"], ids["hexagonal"], ids["tetragonal"]
    start = _package(tmp_path / "start", {
        "label": "disordered_spacegroup_number", "classes": [225],
        "training": {"train_ids": [ni, "dec-A1-Cu-0"], "val_ids": [], "settings": {}},
    })  # fmt: skip
    model = _package(tmp_path / "model", {
        "accuracy": {"per_material": {ni: 1.0, al: 1.0, mg: 0.0}},
        "extra_evaluations": {"unseen_groups": {"per_material": {rutile: 0.5, al: 0.9}}},
        "training": {"settings": {"init_from": start}},
    })  # fmt: skip
    table = overlap_table(open_lake(url), start, [model])
    assert table["start_crystal_systems"] == ["cubic"]  # "dec-A1-Cu-0" is not in this lake
    rows = table[model]
    assert rows["init_from"] == start
    assert rows["held-out materials: all"]["n"] == 3
    assert rows["held-out materials: all"]["mean"] == pytest.approx(2 / 3)
    assert rows["held-out materials: never trained on by the start"]["mean"] == 0.5
    assert rows["held-out materials: crystal systems the start never saw"]["n"] == 1
    assert rows["held-out materials: crystal systems the start never saw"]["mean"] == 0.0
    assert rows["unseen space groups: crystal systems the start never saw"]["mean"] == 0.5

    out = tmp_path / "overlap.json"
    assert main(["--lake", url, "--start", start, "--model", model, "--out", str(out)]) == 0
    assert json.loads(out.read_text())[model] == json.loads(json.dumps(rows))
