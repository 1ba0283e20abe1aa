"""scripts/recipe_variant.py: a recipe built with training fields changed (the experiments of
docs/RESULTS.md "Training schedule and length" are this script at full size)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from recipe_variant import main, training_changes  # noqa: E402

from infra.app.recipes import recipe  # noqa: E402


def test_changes_take_the_fields_types():
    training = recipe("cubic-lab").training
    changes = training_changes(["epochs=40", "lr=0.005", "lr_schedule=cosine"], training)
    assert changes == {"epochs": 40, "lr": 0.005, "lr_schedule": "cosine"}
    assert isinstance(changes["epochs"], int) and isinstance(changes["lr"], float)


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


def test_the_variant_is_built_with_its_changes(tmp_path):
    """The tiny recipe (1 epoch) built as a 2-epoch variant: the package carries the new name
    and the changed setting; everything else is the recipe's."""
    assert main(["tiny", "tiny-e2", "epochs=2", "--lake", str(tmp_path / "lake"),
                 "--out", str(tmp_path / "models")]) == 0  # fmt: skip
    card = json.loads((tmp_path / "models" / "tiny-e2" / "card.json").read_text())
    settings = card["training"]["settings"]
    assert card["name"] == "tiny-e2"
    assert settings["epochs"] == 2 != recipe("tiny").training.epochs
    assert settings["image_size"] == recipe("tiny").training.image_size
