"""Read a cubic package's accuracies by structure type: seen types against types never trained on.

A card scores materials one by one (``per_material``); grouped by the structure type each is of
(``ingest.structure_types.structure_type_of`` on the lake's provenance), they say which new
structures the network reads and which it does not, and how the bundled real phases of a type
fare against its generated decorations. Sets: the held-out materials (new decorations of trained
types) and, when the build held types out (``Recipe.unseen_structure_types``), the materials of
those types::

    .venv/bin/python scripts/structure_type_scores.py --lake LAKE OUT/cubic-lab-types \\
        --out types.json
    .venv/bin/python scripts/structure_type_scores.py --lake LAKE cubic-lab \
        --held-out-by OUT/cubic-lab-types   # the shipped model on the same materials
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETS = {"held-out materials": None, "structure types never trained on": "unseen_types"}
"""Evaluation sets of a card: None is the card's own ``accuracy``, else an extra evaluation."""


def type_scores(
    card: dict[str, Any], lake: Any, keep: set[str] | None = None
) -> list[dict[str, Any]]:
    """One row per (set, structure type, kind): materials, mean per-material accuracy, its
    lowest, and the disordered class; ``kind`` is ``prototype`` (a bundled real phase) or
    ``decorated``. ``keep``: only these materials (to read two packages on the same ones)."""
    import numpy as np

    from ingest.structure_types import STRUCTURE_TYPES, structure_type_of

    rows = []
    for name, key in SETS.items():
        block = card["accuracy"] if key is None else (card.get("extra_evaluations") or {}).get(key)
        if not block:
            continue
        groups: dict[tuple[str, str], list[float]] = {}
        for material, value in block["per_material"].items():
            if keep is not None and material not in keep:
                continue
            provenance = lake.structure(material).get("provenance") or {}
            stype = structure_type_of(provenance) or "other"
            kind = "prototype" if str(material).startswith("proto-") else "decorated"
            groups.setdefault((stype, kind), []).append(float(value))
        for (stype, kind), values in sorted(groups.items()):
            known = STRUCTURE_TYPES.get(stype)
            rows.append({
                "set": name, "structure_type": stype, "kind": kind, "materials": len(values),
                "accuracy": round(float(np.mean(values)), 3), "lowest": round(min(values), 3),
                "disordered_class": known.disordered if known else None,
            })  # fmt: skip
    return rows


def scored_materials(card: dict[str, Any]) -> set[str]:
    """Every material a card scores, in any of :data:`SETS`."""
    extra = card.get("extra_evaluations") or {}
    blocks = [card["accuracy"], *(extra[k] for k in SETS.values() if k in extra)]
    return {str(m) for block in blocks for m in block["per_material"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", help="a package folder or shipped name")
    parser.add_argument("--lake", required=True, help="the lake holding its materials")
    parser.add_argument(
        "--held-out-by",
        metavar="PACKAGE",
        help="only the materials this other package's card scores (held out or of types held "
        "out): two packages read on the same materials",
    )
    parser.add_argument("--out", help="write the rows as JSON here too")
    args = parser.parse_args(argv)

    from lake import Lake
    from train.shipped import model_folder

    try:
        card = json.loads((model_folder(args.package) / "card.json").read_text())
        other = (
            json.loads((model_folder(args.held_out_by) / "card.json").read_text())
            if args.held_out_by
            else None
        )
    except (OSError, ValueError) as exc:
        print(f"structure_type_scores: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    keep = scored_materials(other) if other else None
    rows = type_scores(card, Lake.open(args.lake, mode="r"), keep)
    print("| set | structure type | kind | materials | accuracy | lowest | disordered class |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['set']} | {row['structure_type']} | {row['kind']} | {row['materials']} | "
            f"{row['accuracy']:.3f} | {row['lowest']:.3f} | {row['disordered_class']} |"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
