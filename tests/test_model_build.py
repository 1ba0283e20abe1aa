"""``ebsdlake model build RECIPE`` end to end on the tiny recipe: ingest, simulate with the real
engine, train on Ray Train, evaluate held-out materials, calibrate, package; then predict with
the package and no lake, and a second build reuses the lake."""

from __future__ import annotations

import json

import pytest

from infra.app.cli import main
from infra.app.recipes import RECIPES, recipe

pytest_plugins = ("training_fixtures",)


def test_tiny_recipe_builds_a_package_that_predicts(tmp_path, ray_two_cpus, nickel_scan_file):
    lake, models = tmp_path / "lake.zarr", tmp_path / "models"
    assert main(["--lake", str(lake), "model", "build", "tiny", "--out", str(models)]) == 0
    package = models / "tiny"
    card = json.loads((package / "card.json").read_text())
    build = card["build"]
    assert build["recipe"] == "tiny" and build["command"].endswith("model build tiny")
    stages = {
        "ingest", "simulate", "train+evaluate", "calibrate", "unseen groups+crystal system",
        "out-of-class",
    }  # fmt: skip
    assert set(build["stage_seconds"]) == stages
    assert build["held_out_materials"], "the recipe holds materials out, grouped by material"
    assert "## Build" in (package / "card.md").read_text()
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


def test_recipes_scale_and_name_errors():
    big = recipe("cubic-cpu").scaled(4, workers=8, use_gpu=True)
    base = RECIPES["cubic-cpu"]
    assert big.decorated_per_type == 4 * base.decorated_per_type
    assert big.training.epochs == 4 * base.training.epochs
    assert big.training.num_workers == 8 and big.training.use_gpu
    systems = recipe("systems-lab").scaled(2)
    assert systems.synthetic_per_laue_class == 2 * RECIPES["systems-lab"].synthetic_per_laue_class
    with pytest.raises(
        ValueError, match="recipe 'nope': unknown; known: cubic-cpu, cubic-lab, systems-lab, tiny"
    ):
        recipe("nope")


def test_systems_recipe_holds_whole_space_groups_out(tmp_path, ray_two_cpus):
    """Synthetic crystals balanced over Laue classes, one space group per class held out
    whole: its materials are neither trained on nor in the held-out set, and the card scores
    them, and every set at the crystal-system level, with confusion figures."""
    from infra.app.model_build import build_model

    tiny = recipe("tiny")
    systems = recipe("systems-lab").refine(
        name="systems-tiny", prototypes=False, noncubic_prototypes=False,
        synthetic_per_laue_class=4, synthetic_groups=(1, 2, 12, 14, 62, 63, 139, 191, 194, 221, 225),
        simulation=tiny.simulation, training=tiny.training.refine(label="disordered_laue_class"),
        holdout_fraction=0.34, evaluation_patterns=4, calibration_patterns=4,
    )  # fmt: skip
    package = build_model(systems, str(tmp_path / "lake.zarr"), tmp_path / "models", report=print)
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
    assert all(m.split("-")[1] in map(str, unseen) for m in unseen_ids)
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
    text = (package / "card.md").read_text()
    assert "space groups never trained on" in text
    assert "## Simulation cost by crystal system" in text
    for name in ("unseen-groups", "held-out-crystal-system", "unseen-groups-crystal-system"):
        assert (package / f"confusion-{name}.png").stat().st_size > 1000
