"""Does a cubic model read rock-salt carbides and nitrides it never trained on?

The cubic recipes decorate structure types with metals and metalloids (Al..Pb); their only
light-element compounds are the three carbide prototypes TiC, NbC and TaC (rock salt, B1;
disordered label Pm-3m). Held out, those score 0.05-0.61 (the no-prototype companion): carbon
scatters little, so the pattern is the metal's fcc sublattice. This builds the common B1
carbides and nitrides of Ti, Zr, Hf, V, Nb and Ta at their measured lattice parameters,
simulates them at the model's recipe settings and scores the model on each, the ones it trained
on apart::

    .venv/bin/python scripts/carbide_probe.py --model cubic-lab --lake LAKE --out probe.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROCK_SALT_A_ANGSTROM = {
    "TiC": 4.328, "ZrC": 4.698, "HfC": 4.638, "VC": 4.166, "NbC": 4.470, "TaC": 4.455,
    "TiN": 4.240, "ZrN": 4.578, "HfN": 4.525, "VN": 4.139, "NbN": 4.392, "TaN": 4.330,
}  # fmt: skip
"""Room-temperature cubic lattice parameters (Angstrom) of the rock-salt carbides and nitrides
(handbook values; VC and TaN as their usual sub-stoichiometric cubic phases)."""


def probe_id(formula: str) -> str:
    """Lake id of a probe phase, e.g. ``probe-B1-ZrC``."""
    return f"probe-B1-{formula}"


def probe_records(formulas: list[str]) -> list[Any]:
    """Labelled records of the named rock-salt phases (metal on 4a, C or N on 4b)."""
    from pymatgen.core import Composition

    from ingest.record import build_record
    from ingest.structure_types import STRUCTURE_TYPES, decorated_structure

    records = []
    for formula in formulas:
        a = ROCK_SALT_A_ANGSTROM[formula]
        metal, light = (str(e) for e in Composition(formula).elements)
        structure = decorated_structure(STRUCTURE_TYPES["B1"], {"A": metal, "B": light}, a**3 / 8)
        provenance = {
            "source": "ebsdlake scripts/carbide_probe.py (handbook lattice parameter)",
            "structure_type": "B1",
            "a_angstrom": a,
        }
        records.append(build_record(probe_id(formula), structure, "decorated", provenance))
    return records


def trained_formulas(card: dict[str, Any]) -> set[str]:
    """Probe formulas whose bundled prototype the model trained on (``proto-TiC``...)."""
    seen = set(card["training"]["train_ids"]) | set(card["training"].get("val_ids") or [])
    return {f for f in ROCK_SALT_A_ANGSTROM if f"proto-{f}" in seen}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cubic-lab", help="package folder or shipped name")
    parser.add_argument("--lake", required=True, help="lake URL (created if absent)")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--patterns-per-material", type=int, default=100)
    parser.add_argument("--only", nargs="+", choices=sorted(ROCK_SALT_A_ANGSTROM))
    args = parser.parse_args(argv)

    from infra.app.recipes import recipe
    from ingest.writer import IngestReport, ingest
    from lake import Lake
    from simulate.campaign import run_campaign
    from train.runs.held_out import score_materials
    from train.runs.inference import load_model
    from train.shipped import model_folder

    try:
        card = json.loads((model_folder(args.model) / "card.json").read_text())
    except (OSError, ValueError) as exc:
        print(f"carbide_probe: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    build = card.get("build") or {}
    cooking = recipe(build.get("recipe_settings", {}).get("varies") or build["recipe"])
    formulas = list(args.only or ROCK_SALT_A_ANGSTROM)
    lake = Lake.open(args.lake, create=True)
    ingest(lake, probe_records(formulas), IngestReport(), description="rock-salt probes")
    ids = [probe_id(f) for f in formulas]
    summary = run_campaign(
        args.lake, None, cooking.simulation, material_ids=ids, seed=cooking.seed, progress=True
    )
    if summary.failed:
        print(f"carbide_probe: {len(summary.failed)} masters failed", file=sys.stderr)
        return 1
    model = load_model(args.model)
    scored = score_materials(model, args.lake, None, ids, args.patterns_per_material)
    trained = trained_formulas(card)
    symbols = {str(c): str(n) for c, n in zip(card["classes"], card["symbols"], strict=True)}
    calls = {  # the scored patterns' calls, by symbol
        m: {symbols[value]: n for value, n in counts.items()}
        for m, counts in scored["calls_by_material"].items()
    }
    rows = [
        {"formula": f, "trained_on": f in trained, "accuracy": scored["per_material"][probe_id(f)],
         "calls": calls[probe_id(f)]}
        for f in formulas
    ]  # fmt: skip
    for row in rows:
        mark = " (trained on)" if row["trained_on"] else ""
        print(f"{row['formula']}{mark}: Pm-3m {row['accuracy']:.2f}; calls {row['calls']}")
    record = {"model": str(args.model), "recipe": cooking.name, "rows": rows, "scored": scored}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
