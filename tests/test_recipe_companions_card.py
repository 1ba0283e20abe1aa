"""The companions' card section: what ``scripts/recipe_companions.py --card`` adds to a package
(the training runs themselves are measured in docs/RESULTS.md, not here: ~30 min each)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from recipe_companions import main  # noqa: E402


def _block(accuracy: float, per_class: dict, per_material: dict) -> dict:
    low, high = accuracy - 0.1, accuracy + 0.1
    interval = {"low": low, "high": high, "mean": accuracy, "n": len(per_material)}
    return {
        "accuracy": accuracy,
        "per_class": per_class,
        "per_material": per_material,
        "confusion": [[1, 0], [0, 1]],
        "material_interval": interval,
    }


def test_companions_land_in_the_card_once_measured(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "card.json").write_text(json.dumps({"name": "pkg"}))
    (package / "card.md").write_text("# Model pkg\n")
    true = {"true_label": _block(0.605, {"225": 0.31, "216": 0.975}, {"dec-B1-ZrNb-7": 0.0})}
    real = {"no_prototypes": _block(0.5, {"229": 1.0}, {"proto-W": 1.0, "proto-Ni": 0.0})}
    (tmp_path / "t.json").write_text(json.dumps(true))
    (tmp_path / "r.json").write_text(json.dumps(real))
    args = ["cubic-lab", "--lake", "unused", "--card", str(package), "--from-json"]
    assert main([*args, str(tmp_path / "t.json"), str(tmp_path / "r.json")]) == 0
    card = json.loads((package / "card.json").read_text())
    assert card["name"] == "pkg"
    assert card["companions"]["true_label"]["accuracy"] == 0.605
    assert "confusion" not in card["companions"]["true_label"]
    text = (package / "card.md").read_text()
    assert text.startswith("# Model pkg\n") and "## Companions (same recipe and split)" in text
    assert (
        "| true label, held-out materials | 1 | 0.605 | 0.505-0.705 | Fm-3m 0.31, F-43m 0.97"
        in text
    )
    assert "proto-Ni 0.00, proto-W 1.00" in text


def test_companions_name_the_build_run_they_need(tmp_path):
    """Without the build's finished run the script stops at once, naming the run it looked for
    (``--built-run`` for a promoted variant's run, else ``model-RECIPE``)."""
    import pytest

    from lake import Lake

    lake = str(tmp_path / "lake.zarr")
    Lake.open(lake, create=True)
    for extra, run in (([], "model-cubic-lab"), (["--built-run", "model-cubic-lab-e40"], None)):
        run = run or extra[-1]
        with pytest.raises(SystemExit, match=f"no finished run '{run}': build 'cubic-lab' first"):
            main(["cubic-lab", "--lake", lake, "--out", str(tmp_path / "c.json"), *extra])
