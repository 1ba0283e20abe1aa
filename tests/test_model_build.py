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
    stages = {"ingest", "simulate", "train+evaluate", "calibrate", "out-of-class"}
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
    with pytest.raises(
        ValueError, match="recipe 'nope': unknown; known: cubic-cpu, cubic-lab, tiny"
    ):
        recipe("nope")
