"""How ``card.md`` names the materials a model was trained on (train/runs/card_ids.py): every
id when few; for hundreds, the generated crystals counted and the real phases named."""

from __future__ import annotations

import json
from pathlib import Path

from train.runs.card_ids import INLINE_IDS, id_list

SHIPPED = Path(__file__).resolve().parents[1] / "train" / "shipped_models"


def test_a_short_list_is_written_out():
    ids = ["proto-Ni", "dec-A1-Cu-8", "syn-225-abc"]
    assert id_list(ids, "training.train_ids") == "proto-Ni, dec-A1-Cu-8, syn-225-abc"
    assert id_list([], "training.test_ids") == "none"


def test_a_long_list_counts_generated_crystals_and_names_real_phases():
    ids = [f"syn-{g}-{i}" for g in (1, 225) for i in range(INLINE_IDS)]
    ids += [f"dec-B2-{i}" for i in range(5)] + ["proto-Ni", "cif-TiO2-9ce9a633"]
    text = id_list(ids, "training.train_ids")
    assert text.startswith(f"{2 * INLINE_IDS} synthetic crystals; 5 decorated crystals; ")
    assert "2 named: proto-Ni, cif-TiO2-9ce9a633" in text
    assert "syn-1-0" not in text and "`training.train_ids`" in text


def test_the_shipped_cards_say_what_their_json_lists():
    for folder in sorted(p for p in SHIPPED.iterdir() if (p / "card.json").is_file()):
        card = json.loads((folder / "card.json").read_text())
        text = (folder / "card.md").read_text()
        for field in ("train_ids", "test_ids"):
            ids = card["training"][field]
            assert id_list(ids, f"training.{field}") in text, (folder.name, field)
