"""Whole structure types held out of training (``Recipe.unseen_structure_types``): which
materials a type takes out, the one-line refusals, and a real build that scores them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from recipe_variant import main as variant_main  # noqa: E402
from recipe_variant import split_recipe_changes  # noqa: E402

from infra.app.unseen_types import split_by_structure_types  # noqa: E402
from ingest.structure_types import structure_type_of  # noqa: E402
from train.errors import TrainingError  # noqa: E402

pytest_plugins = ("training_fixtures",)

LABEL = "disordered_spacegroup_number"


def test_a_structures_type_comes_from_its_provenance():
    assert structure_type_of({"structure_type": "L1_2", "prototype": "Cu3Au"}) == "L1_2"
    assert structure_type_of({"prototype": "C diamond (A4)"}) == "A4"
    assert structure_type_of({"prototype": "Cu3Au (L1_2)"}) == "L1_2"
    assert structure_type_of({"prototype": "spinel (H1_1)"}) is None  # not a bundled type
    assert structure_type_of({"source": "pyxtal"}) is None


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """Decorated A1, A2, B2 crystals and the bundled prototypes in a real lake (no masters)."""
    from ingest.prototypes import load_prototypes
    from ingest.structure_types import generate_decorated, parse_structure_types
    from ingest.writer import IngestReport, ingest
    from lake import Lake

    lake = Lake.open(str(tmp_path_factory.mktemp("types") / "lake.zarr"), create=True)
    report = IngestReport()
    decorated = generate_decorated(parse_structure_types(["A1", "A2", "B2"]), 3, 0)
    ingest(lake, decorated, report)
    ingest(lake, load_prototypes(only=["NiAl", "Fe", "Ni", "Si"]), report)
    return lake, sorted(lake.structure_ids())


def test_a_held_out_type_takes_its_decorations_and_its_prototypes(ingested):
    lake, ids = ingested
    seen, unseen = split_by_structure_types(lake, ids, ("B2",), LABEL)
    assert sorted(unseen) == sorted(m for m in ids if m.startswith("dec-B2-")) + ["proto-NiAl"]
    assert set(seen) | set(unseen) == set(ids) and not set(seen) & set(unseen)
    assert split_by_structure_types(lake, ids, (), LABEL) == (ids, [])


@pytest.mark.parametrize(
    ("types", "says"),
    [
        (("A2", "B2"), "class 229 would have no training material"),  # bcc's only types
        (("A15",), "A15: no material of the recipe is of them"),
        (("B9",), "unknown structure type 'B9'; valid: A1, A2"),
    ],
)
def test_a_type_set_that_cannot_be_held_out_is_one_line(ingested, types, says):
    lake, ids = ingested
    with pytest.raises(TrainingError, match=says) as caught:
        split_by_structure_types(lake, ids, types, LABEL)
    assert "\n" not in str(caught.value)


def test_a_variant_takes_recipe_name_lists():
    fields, rest = split_recipe_changes(["unseen_structure_types=B1,L1_2", "epochs=3"])
    assert fields == {"unseen_structure_types": ("B1", "L1_2")} and rest == ["epochs=3"]
    assert split_recipe_changes(["out_of_class=none"])[0] == {"out_of_class": ()}
    assert split_recipe_changes(["synthetic_per_laue_class=96"])[0] == {
        "synthetic_per_laue_class": 96
    }
    with pytest.raises(ValueError, match="whole number"):
        split_recipe_changes(["decorated_per_type=-1"])


def test_a_build_scores_the_types_it_never_trained_on(tmp_path, ray_two_cpus):
    """The tiny recipe with B2 crystals added and held out whole: none of them is trained on
    or in the held-out set, the card scores them (their disordered class, Im-3m, is A2's) with
    a confusion figure, and ``model ls``'s headline shows the figure."""
    from train.runs.package import headline

    models = tmp_path / "models"
    argv = ["tiny", "tiny-types", "structure_types=A1,A2,A4,B2", "unseen_structure_types=B2",
            "--lake", str(tmp_path / "lake.zarr"), "--out", str(models)]  # fmt: skip
    assert variant_main(argv) == 0
    package = models / "tiny-types"
    card = json.loads((package / "card.json").read_text())
    assert card["unseen_structure_types"] == ["B2"]
    unseen = card["extra_evaluations"]["unseen_types"]
    unseen_ids = set(unseen["per_material"])
    assert len(unseen_ids) == 3 and all(m.startswith("dec-B2-") for m in unseen_ids)
    trained, held_out = set(card["training"]["train_ids"]), set(card["training"]["test_ids"])
    assert not unseen_ids & (trained | held_out)
    assert any(m.startswith("dec-A2-") for m in trained)
    assert set(unseen["per_class"]) == {"229"}  # Im-3m
    assert f"unseen structure types {unseen['held_out']:.3f}" in headline(card)["accuracy"]
    text = (package / "card.md").read_text()
    assert "Structure types never trained on: B2." in text
    assert (package / "confusion-unseen-types.png").stat().st_size > 1000


def test_a_cards_scores_read_by_structure_type(ingested, tmp_path, capsys):
    """scripts/structure_type_scores.py groups a card's per-material accuracies by the type
    each material is of (from the lake), real prototypes apart from decorations."""
    from structure_type_scores import main as scores_main

    lake, ids = ingested
    b2 = [m for m in ids if m.startswith("dec-B2-")]
    card = {
        "accuracy": {"per_material": {"proto-Fe": 1.0, ids[0]: 0.5}},
        "extra_evaluations": {
            "unseen_types": {"per_material": {b2[0]: 0.2, b2[1]: 0.6, "proto-NiAl": 0.0}}
        },
    }
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "card.json").write_text(json.dumps(card))
    out = tmp_path / "rows.json"
    assert scores_main([str(folder), "--lake", lake.url, "--out", str(out)]) == 0
    rows = {(r["set"], r["structure_type"], r["kind"]): r for r in json.loads(out.read_text())}
    unseen = rows[("structure types never trained on", "B2", "decorated")]
    assert unseen["materials"] == 2 and unseen["accuracy"] == 0.4 and unseen["lowest"] == 0.2
    assert unseen["disordered_class"] == 229
    assert rows[("structure types never trained on", "B2", "prototype")]["accuracy"] == 0.0
    assert rows[("held-out materials", "A2", "prototype")]["accuracy"] == 1.0
    assert "| structure types never trained on | B2 | decorated | 2 | 0.400 |" in (
        capsys.readouterr().out
    )
    other = tmp_path / "other"
    other.mkdir()
    (other / "card.json").write_text(json.dumps({"accuracy": {"per_material": {b2[1]: 0.9}}}))
    argv = [str(folder), "--lake", lake.url, "--held-out-by", str(other), "--out", str(out)]
    assert scores_main(argv) == 0  # read on the other card's materials only
    (row,) = json.loads(out.read_text())
    assert row["materials"] == 1 and row["accuracy"] == 0.6
    assert scores_main([str(folder), "--lake", lake.url, "--held-out-by", "nope"]) == 2
    assert "no such model folder" in capsys.readouterr().err


def test_a_variant_with_a_type_it_cannot_hold_out_stops_before_simulating(tmp_path, capsys):
    """tiny has A1, A2 and A4 only: holding out A15 is refused in one line after ingest, and
    not one master has been simulated."""
    from lake import Lake

    lake_url = str(tmp_path / "lake.zarr")
    argv = ["tiny", "tiny-bad", "unseen_structure_types=A15", "--lake", lake_url,
            "--out", str(tmp_path / "models")]  # fmt: skip
    assert variant_main(argv) == 2
    err = capsys.readouterr().err  # the ingest progress bars, then the one line
    assert "Traceback" not in err
    assert err.splitlines()[-1] == (
        "recipe_variant: unseen structure types A15: no material of the recipe is of them"
    )
    lake = Lake.open(lake_url, mode="r")
    assert lake.structure_ids() and not any(lake.variants(m) for m in lake.structure_ids())
