"""scripts/recipe_variant.py: a recipe built with training fields changed (the experiments of
docs/RESULTS.md "Training schedule and length" are this script at full size)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from recipe_variant import main, simulation_changes, training_changes  # noqa: E402

from infra.app.recipes import recipe  # noqa: E402


def test_changes_take_the_fields_types():
    training = recipe("cubic-lab").training
    changes = training_changes(["epochs=40", "lr=0.005", "lr_schedule=cosine"], training)
    assert changes == {"epochs": 40, "lr": 0.005, "lr_schedule": "cosine"}
    assert isinstance(changes["epochs"], int) and isinstance(changes["lr"], float)
    tiny = recipe("tiny").training  # degrade is off there: a flag that may also be a set name
    assert training_changes(["degrade=lab-falloff"], tiny) == {"degrade": "lab-falloff"}
    assert training_changes(["degrade=true"], tiny) == {"degrade": True}
    with pytest.raises(ValueError, match="expected true or false"):
        training_changes(["augment=lab"], tiny)
    assert training_changes(["pc_range=none", "degrade=false"], training) == {
        "pc_range": None, "degrade": False,
    }  # fmt: skip
    with pytest.raises(ValueError, match="cannot be none"):
        training_changes(["epochs=none"], training)


def test_master_settings_are_named_with_their_prefix_and_typed():
    simulation = recipe("cubic-lab").simulation
    changes, rest = simulation_changes(
        ["simulation.npx=96", "simulation.dmin_nm=0.035", "epochs=3"], simulation
    )
    assert changes == {"npx": 96, "dmin_nm": 0.035} and rest == ["epochs=3"]
    assert isinstance(changes["npx"], int) and isinstance(changes["dmin_nm"], float)
    assert simulation.refine(**changes).npx == 96  # what the variant's build simulates


@pytest.mark.parametrize(
    ("pair", "says"),
    [("simulation.npix=96", "master settings"), ("simulation.npx=many", "expected a int"),
     ("simulation.npx", "simulation.FIELD=VALUE"), ("simulation.npx=0", "npx")],
)  # fmt: skip
def test_a_bad_master_setting_is_one_line(pair, says, capsys):
    assert main(["cubic-lab", "v", pair, "--lake", "unused"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err


@pytest.mark.parametrize(
    ("pair", "says"),
    [("epoch=40", "training fields"), ("epochs", "FIELD=VALUE"), ("epochs=many", "many")],
)
def test_a_bad_change_is_one_line(pair, says, capsys):
    with pytest.raises(ValueError, match=says):
        training_changes([pair], recipe("cubic-lab").training)
    assert main(["cubic-lab", "v", pair, "--lake", "unused"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and pair in err


def test_the_variant_is_built_with_its_changes(tmp_path, capsys):
    """The tiny recipe (1 epoch) built as a 2-epoch variant with another training seed: the
    package carries the new name and the changed settings; the network and stream are seeded
    with the new seed but the held-out materials are the recipe's own split (what a second draw
    must keep); everything else is the recipe's."""
    from lake import Lake
    from train.patterns.materials import holdout_split
    from train.runs.kfold import material_labels

    tiny = recipe("tiny")
    assert main(["tiny", "tiny-e2", "epochs=2", "seed=5", "--lake", str(tmp_path / "lake"),
                 "--out", str(tmp_path / "models")]) == 0  # fmt: skip
    card = json.loads((tmp_path / "models" / "tiny-e2" / "card.json").read_text())
    settings = card["training"]["settings"]
    assert card["name"] == "tiny-e2"
    rebuild = "python scripts/recipe_variant.py tiny tiny-e2 --lake LAKE --out OUT epochs=2 seed=5"
    assert card["build"]["command"] == rebuild
    assert f"Rebuild: `{rebuild}`" in (tmp_path / "models" / "tiny-e2" / "card.md").read_text()
    assert settings["epochs"] == 2 != tiny.training.epochs
    assert settings["image_size"] == tiny.training.image_size
    assert settings["seed"] == 5 != tiny.seed
    assert card["build"]["recipe_settings"]["training_seed"] == 5
    assert card["build"]["recipe_settings"]["varies"] == "tiny"  # the recipe it varies

    lake = Lake.open(str(tmp_path / "lake"), mode="r")
    ids = sorted([*card["training"]["train_ids"], *card["training"]["test_ids"]])
    labels = material_labels(lake, ids, tiny.training.label)
    recipes_split = holdout_split(ids, labels, tiny.holdout_fraction, tiny.seed)[1]
    assert sorted(card["training"]["test_ids"]) == sorted(recipes_split)
    seeds_split = holdout_split(ids, labels, tiny.holdout_fraction, 5)[1]
    assert sorted(seeds_split) != sorted(recipes_split)  # so the check above can fail

    # other masters on this lake: refused in one line before anything is simulated
    capsys.readouterr()
    assert main(["tiny", "tiny-npx20", "simulation.npx=20", "--lake", str(tmp_path / "lake"),
                 "--out", str(tmp_path / "models")]) == 2  # fmt: skip
    said = [line for line in capsys.readouterr().err.splitlines() if "recipe_variant:" in line]
    assert len(said) == 1 and "other settings" in said[0] and "npx" in said[0]
    assert not (tmp_path / "models" / "tiny-npx20").exists()


def test_a_variant_becomes_the_recipes_package_only_with_its_settings(tmp_path, capsys):
    """scripts/promote_variant.py: a 2-epoch variant of the 1-epoch tiny recipe is refused by
    name of the setting; a variant whose changes the recipe has (epochs=1) becomes ``tiny``,
    loadable, with the rebuild command and where it came from in its card."""
    from promote_variant import main as promote_main

    from train.runs.inference import load_model

    lake, models = str(tmp_path / "lake"), tmp_path / "models"
    for name, epochs in (("tiny-e2", 2), ("tiny-same", 1)):
        argv = ["tiny", name, f"epochs={epochs}", "--lake", lake, "--out", str(models)]
        assert main(argv) == 0
    capsys.readouterr()
    assert promote_main([str(models / "tiny-e2"), "tiny", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "training.epochs" in err and "tiny-e2" in err
    assert not (tmp_path / "s" / "tiny").exists()

    assert promote_main([str(models / "tiny-same"), "tiny", "--out", str(tmp_path / "s")]) == 0
    package = tmp_path / "s" / "tiny"
    card = json.loads((package / "card.json").read_text())
    assert card["name"] == "tiny" and card["build"]["promoted_from"] == "tiny-same"
    assert card["build"]["command"] == "ebsdlake --lake LAKE model build tiny"
    assert card["rebuild"][-1].endswith("model export model-tiny-same tiny")
    text = (package / "card.md").read_text()
    assert text.startswith("# Model tiny\n") and "recipe variant `tiny-same`" in text
    assert "Rebuild: `ebsdlake --lake LAKE model build tiny`" in text
    assert load_model(package).classes == load_model(models / "tiny-same").classes
