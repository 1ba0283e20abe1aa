"""``ebsdlake model build RECIPE`` end to end on the tiny recipe: ingest, simulate with the real
engine, train on Ray Train, evaluate held-out materials, calibrate, package; then predict with
the package and no lake, and a second build reuses the lake."""

from __future__ import annotations

import json

import pytest

from infra.app.cli import main
from infra.app.recipes import RECIPES, recipe
from train.errors import TrainingError

pytest_plugins = ("training_fixtures",)


@pytest.fixture(scope="module")
def tiny_package(tmp_path_factory, ray_two_cpus):
    """The tiny recipe built through the CLI into a scratch lake."""
    root = tmp_path_factory.mktemp("tiny")
    lake, models = root / "lake.zarr", root / "models"
    assert main(["--lake", str(lake), "model", "build", "tiny", "--out", str(models)]) == 0
    return models / "tiny"


@pytest.fixture(scope="module")
def systems_package(tmp_path_factory, ray_two_cpus):
    """A systems recipe at tiny scale: synthetic crystals of 11 groups in 6 Laue classes."""
    from infra.app.model_build import build_model

    root = tmp_path_factory.mktemp("systems")
    tiny = recipe("tiny")
    systems = recipe("systems-lab").refine(
        name="systems-tiny", prototypes=False, noncubic_prototypes=False,
        synthetic_per_laue_class=4, synthetic_groups=(1, 2, 12, 14, 62, 63, 139, 191, 194, 221, 225),
        simulation=tiny.simulation, training=tiny.training.refine(label="disordered_laue_class"),
        holdout_fraction=0.34, evaluation_patterns=4, calibration_patterns=4,
    )  # fmt: skip
    return build_model(systems, str(root / "lake.zarr"), root / "models", report=print)


@pytest.fixture(scope="module")
def outside_package(tmp_path_factory, ray_two_cpus):
    """The tiny recipe with a scoped label: its cubic crystals keep their disordered space
    group, synthetic crystals of three other Laue classes are the class ``outside``."""
    from infra.app.model_build import build_model
    from infra.app.recipes import PAPER_CLASSES, SYSTEMS_SYNTHETIC
    from train.targets import scoped_label

    root = tmp_path_factory.mktemp("outside")
    tiny = recipe("tiny")
    scoped = tiny.refine(
        name="tiny-outside", synthetic_per_laue_class=3, synthetic=SYSTEMS_SYNTHETIC,
        synthetic_groups=(62, 136, 194),
        training=tiny.training.refine(label=scoped_label("disordered_spacegroup", PAPER_CLASSES)),
    )  # fmt: skip
    return build_model(scoped, str(root / "lake.zarr"), root / "models", report=print)


def test_a_scoped_label_trains_an_outside_class_that_predict_and_the_gate_read(
    outside_package, systems_package, nickel_scan_file, tmp_path, capsys
):
    """Materials of other Laue classes are trained on as one class, ``outside``: held out and
    scored like the others, read by predict as a call (p_outside in the CSV), and a gate of
    such a model accepts m-3m (the outside class has no Laue class of its own)."""
    import csv

    card = json.loads((outside_package / "card.json").read_text())
    assert card["label"] == "disordered_spacegroup_number@221,223,225,227,229"
    assert card["classes"][-1] == "outside" and card["symbols"][-1] == "outside"
    assert set(card["classes"][:-1]) <= {225, 227, 229}
    held_out = card["training"]["test_ids"]
    assert any(m.startswith("syn-") for m in held_out)  # outside materials are held out too
    assert "outside" in card["accuracy"]["per_class"]
    out = tmp_path / "p"
    argv = ["predict", "--model", str(outside_package), "--gate", str(systems_package)]
    assert main([*argv, nickel_scan_file, "--out", str(out)]) == 0
    rows = list(csv.DictReader((out / "patterns.csv").open()))
    assert len(rows) == 9 and all(0.0 <= float(r["p_outside"]) <= 1.0 for r in rows)
    assert {r["symbol"] for r in rows} <= {"Fm-3m", "Fd-3m", "Im-3m", "outside"}
    assert "outside the classes by gate systems-tiny" in capsys.readouterr().out


def test_tiny_recipe_builds_a_package_that_predicts(tmp_path, tiny_package, nickel_scan_file):
    package = tiny_package
    card = json.loads((package / "card.json").read_text())
    build = card["build"]
    assert build["recipe"] == "tiny" and build["command"].endswith("model build tiny")
    stages = {
        "ingest", "simulate", "train+evaluate", "calibrate", "unseen groups/types+crystal system",
        "out-of-class",
    }  # fmt: skip
    assert set(build["stage_seconds"]) == stages
    assert build["held_out_materials"], "the recipe holds materials out, grouped by material"
    assert build["masters"]["reused"] == 0 and build["masters"]["simulated"] >= 9
    assert "## Build" in (package / "card.md").read_text()
    assert "reused" not in (package / "card.md").read_text()
    # the hexagonal Mg phase was simulated, never trained on, and scored with noise frames
    outside = {row["source"]: row for row in card["out_of_class"]}
    mg = next(row for row in outside.values() if row.get("formula") == "Mg")
    assert mg["label"] == 194 and mg["patterns"] == 8 and 0.0 <= mg["uncertain"] <= 1.0
    assert mg["source"] not in build["held_out_materials"]
    assert outside["noise"]["uncertain"] == 1.0, "noise frames fail the image-quality check"
    assert "## Outside the classes" in (package / "card.md").read_text()
    out = tmp_path / "predictions"
    argv = ["predict", "--model", str(package), nickel_scan_file, "--out", str(out)]
    assert main(argv) == 0
    assert (out / "patterns.csv").is_file()


def test_a_second_build_reuses_the_lake_and_says_so(tiny_package, tmp_path):
    """Same recipe, same lake: no master simulated again, the finished run read back, and the
    card says its times are not a from-scratch build's."""
    first = json.loads((tiny_package / "card.json").read_text())["build"]
    lake = tiny_package.parent.parent / "lake.zarr"
    assert main(["--lake", str(lake), "model", "build", "tiny", "--out", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "tiny" / "card.json").read_text())["build"]
    assert again["masters"] == {"simulated": 0, "reused": first["masters"]["simulated"]}
    assert again["held_out_materials"] == first["held_out_materials"]
    assert "reused" in (tmp_path / "tiny" / "card.md").read_text()


def test_a_recipe_with_further_beam_energies_trains_on_each(tiny_package, tmp_path):
    """``beam_energies_kv``: on the tiny build's lake only the 30 kV masters are new (variant
    ``kv30``, energy bins moved with the beam), of the training crystals alone (the phases
    outside the classes stay at the recipe's voltage), and the run reads both variants."""
    from infra.app.model_build import build_model
    from lake import Lake

    lake_url = str(tiny_package.parent.parent / "lake.zarr")
    tiny = recipe("tiny")
    at_two = tiny.refine(name="tiny-kv", beam_energies_kv=(30.0,))
    assert [v for v, _ in at_two.voltage_settings()] == ["default", "kv30"]
    package = build_model(at_two, lake_url, tmp_path, report=print)
    card = json.loads((package / "card.json").read_text())
    assert card["build"]["recipe_settings"]["beam_energies_kv"] == [30.0]
    assert card["training"]["settings"]["variants"] == ["default", "kv30"]
    assert "30 kV (`kv30`, bins 30-30 keV)" in (package / "card.md").read_text()
    lake = Lake.open(lake_url, mode="r")
    trained = [*card["training"]["train_ids"], *card["training"]["test_ids"]]
    assert card["build"]["masters"]["simulated"] == len(trained)
    for material in trained:
        assert sorted(lake.variants(material)) == ["default", "kv30"]
        attrs = lake.master_attrs(material, "kv30")
        shift = 30.0 - tiny.simulation.voltage_kv
        assert attrs["voltage_kv"] == 30.0
        assert attrs["energies_kev"] == [e + shift for e in tiny.simulation.energies_kev]
    outsiders = [row["source"] for row in card["out_of_class"] if row["source"] != "noise"]
    assert outsiders and all(lake.variants(m) == ["default"] for m in outsiders)


def test_recipes_scale_and_name_errors():
    big = recipe("cubic-cpu").scaled(4, workers=8, use_gpu=True)
    base = RECIPES["cubic-cpu"]
    assert big.decorated_per_type == 4 * base.decorated_per_type
    assert big.training.epochs == 4 * base.training.epochs
    assert big.training.num_workers == 8 and big.training.use_gpu
    systems = recipe("systems-lab").scaled(2)
    assert systems.synthetic_per_laue_class == 2 * RECIPES["systems-lab"].synthetic_per_laue_class
    groups = RECIPES["systems-lab"].laue_class_groups()  # 11 classes, at most 24 groups each
    assert len(groups) == 11 and len(groups["mmm"]) == 24 and len(groups["-1"]) == 2
    assert (
        set(groups["mmm"]) <= set(range(16, 75))
        and groups == recipe("systems-lab").laue_class_groups()
    )
    assert RECIPES["systems-lab"].refine(groups_per_laue_class=None).laue_class_groups()[
        "mmm"
    ] == list(range(16, 75))
    with pytest.raises(
        ValueError,
        match="recipe 'nope': unknown; known: cubic-cpu, cubic-lab, systems-lab, "
        "cubic-lab-kv, cubic-lab-outside, tiny",
    ):
        recipe("nope")


def test_systems_recipe_holds_whole_space_groups_out(systems_package):
    """Synthetic crystals balanced over Laue classes, one space group per class held out
    whole: its materials are neither trained on nor in the held-out set, and the card scores
    them, and every set at the crystal-system level, with confusion figures."""
    package = systems_package
    card = json.loads((package / "card.json").read_text())
    unseen = card["unseen_space_groups"]
    assert len(unseen) == 5 and 139 not in unseen  # one of each pair; 4/mmm has only 139
    extra = card["extra_evaluations"]
    assert set(extra) == {
        "unseen_groups", "held_out_crystal_system", "unseen_groups_crystal_system"
    }  # fmt: skip
    unseen_ids = set(extra["unseen_groups"]["per_material"])
    trained, held_out = set(card["training"]["train_ids"]), set(card["training"]["test_ids"])
    assert unseen_ids and not unseen_ids & (trained | held_out)
    assert {int(m.split("-")[1]) for m in unseen_ids} == set(unseen)  # none left empty
    assert set(card["classes"]) <= {"-1", "2/m", "mmm", "4/mmm", "6/mmm", "m-3m"}
    coarse = extra["held_out_crystal_system"]
    assert coarse["held_out"] >= card["accuracy"]["held_out"]  # a right class is a right system
    assert set(coarse["per_class"]) <= {
        "triclinic", "monoclinic", "orthorhombic", "tetragonal", "hexagonal", "cubic"
    }  # fmt: skip
    costs = {row["crystal_system"]: row for row in card["build"]["seconds_per_master"]}
    assert {"triclinic", "monoclinic", "hexagonal", "cubic"} <= set(costs)
    assert all(row["masters"] >= 1 and row["median_s"] > 0 for row in costs.values())
    assert costs["monoclinic"]["folded"] == 0.0 and costs["cubic"]["folded"] == 1.0
    from train.runs.package import headline

    shown = f"unseen space groups {extra['unseen_groups']['held_out']:.3f}"
    assert shown in headline(card)["accuracy"]  # what `model ls` prints
    text = (package / "card.md").read_text()
    assert "space groups never trained on" in text
    assert "## Simulation cost by crystal system" in text
    for name in ("unseen-groups", "held-out-crystal-system", "unseen-groups-crystal-system"):
        assert (package / f"confusion-{name}.png").stat().st_size > 1000


def test_a_laue_class_gate_makes_out_of_scope_calls_uncertain(
    tmp_path, tiny_package, systems_package, nickel_scan_file, capsys
):
    """``predict --gate``: the Laue-class model's in-scope probability (m-3m for cubic
    classes) per pattern lands in the CSV, and every pattern it puts outside is uncertain."""
    import csv

    out = tmp_path / "gated"
    argv = ["predict", "--model", str(tiny_package), "--gate", str(systems_package)]
    assert main([*argv, nickel_scan_file, "--out", str(out)]) == 0
    assert "outside the classes by gate systems-tiny" in capsys.readouterr().out
    rows = list(csv.DictReader((out / "patterns.csv").open()))
    assert len(rows) == 9
    for row in rows:
        assert 0.0 <= float(row["in_scope_probability"]) <= 1.0
        assert row["gate_call"] in {"-1", "2/m", "mmm", "4/mmm", "6/mmm", "m-3m"}
        if row["gate_call"] != "m-3m":  # another class beat m-3m: outside, so uncertain
            assert row["verdict"] == "uncertain"
    # the gate must predict Laue classes: one line, no traceback
    wrong = ["predict", "--model", str(tiny_package), "--gate", str(tiny_package)]
    assert main([*wrong, nickel_scan_file, "--out", str(tmp_path / "no")]) == 2
    assert "--gate tiny: predicts 'disordered_spacegroup_number', not Laue classes" in (
        capsys.readouterr().err
    )


def test_gate_classes_follow_the_gated_label():
    from train.runs.scope_gate import laue_classes_of

    assert laue_classes_of("disordered_spacegroup", [221, 225, 229]) == {"m-3m"}
    assert laue_classes_of("spacegroup", [194, 200]) == {"6/mmm", "m-3"}
    assert laue_classes_of("crystal_system", ["trigonal"]) == {"-3", "-3m"}
    assert laue_classes_of("point_group", ["mm2", "-43m"]) == {"mmm", "m-3m"}
    with pytest.raises(TrainingError, match="label 'bravais_lattice' has no Laue classes"):
        laue_classes_of("bravais_lattice", ["cF"])
