"""Score packages on the materials a starting network never saw (runs made with ``init_from``).

A run started from ``cubic-lab``'s network (``SupervisedConfig.init_from``) has layers trained
on cubic-lab's materials, so its card's held-out and unseen-group figures mix materials that
backbone saw (under another label) with materials nothing saw. This recomputes each card's
per-material accuracies (mean and 95 % interval over materials) on three subsets: all of them
(the card's figure), those the starting package never trained on, and those of crystal systems
absent from its training set (for ``cubic-lab``: every non-cubic material). Give the baseline
package too, so both are read on the same subsets::

    .venv/bin/python scripts/start_overlap.py --lake LAKE --start cubic-lab \\
        --model train/shipped_models/systems-lab OUT/systems-lab-init --out overlap.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETS = {"held-out materials": None, "unseen space groups": "unseen_groups"}
"""Evaluation sets of a card: None is the card's own ``accuracy``, else an extra evaluation."""


def card_of(package: str) -> dict[str, Any]:
    """The ``card.json`` of a package folder or shipped name."""
    from train.shipped import model_folder

    return json.loads((model_folder(package) / "card.json").read_text())


def per_material(card: dict[str, Any], which: str | None) -> dict[str, float]:
    """Per-material accuracy of one evaluation set of a card."""
    block = card["accuracy"] if which is None else card["extra_evaluations"][which]
    return {str(k): float(v) for k, v in block["per_material"].items()}


def trained_ids(card: dict[str, Any]) -> set[str]:
    """Every material a package's network was fitted or validated on."""
    training = card["training"]
    return set(training["train_ids"]) | set(training.get("val_ids") or [])


def start_crystal_systems(lake: Any, card: dict[str, Any], seen: set[str]) -> set[str]:
    """Crystal systems the starting package was trained on: its materials found in ``lake``,
    and its classes when they are space-group numbers (its own lake may be gone)."""
    from ingest.spacegroups import crystal_system
    from lake.errors import LakeNotFoundError

    systems = set()
    for material in seen:
        try:
            systems.add(str(lake.structure_record(material).label("crystal_system")))
        except LakeNotFoundError:  # not in this lake
            continue
    if "spacegroup" in str(card.get("label", "")):
        systems |= {crystal_system(int(number)) for number in card["classes"]}
    return systems


def subsets(
    ids: list[str], seen: set[str], system: dict[str, str], seen_systems: set[str]
) -> dict[str, list[str]]:
    """The three material subsets of one evaluation set."""
    return {
        "all": list(ids),
        "never trained on by the start": [m for m in ids if m not in seen],
        "crystal systems the start never saw": [m for m in ids if system[m] not in seen_systems],
    }


def scored(values: dict[str, float], ids: list[str]) -> dict[str, float] | None:
    """Mean and 95 % interval over ``ids`` (None when empty)."""
    from train.runs.scores import mean_interval

    return mean_interval([values[m] for m in ids]) if ids else None


def overlap_table(lake: Any, start: str, packages: list[str]) -> dict[str, Any]:
    """Each package's accuracy on each set and subset, with the subsets' sizes."""
    start_card = card_of(start)
    seen = trained_ids(start_card)
    cards = {package: card_of(package) for package in packages}
    ids = sorted({m for c in cards.values() for w in SETS.values() for m in per_material(c, w)})
    system = {m: str(lake.structure_record(m).label("crystal_system")) for m in ids}
    seen_systems = start_crystal_systems(lake, start_card, seen)
    table: dict[str, Any] = {"start": start, "start_crystal_systems": sorted(seen_systems)}
    for package, card in cards.items():
        rows = {}
        for set_name, which in SETS.items():
            values = per_material(card, which)
            for subset, members in subsets(sorted(values), seen, system, seen_systems).items():
                rows[f"{set_name}: {subset}"] = scored(values, members)
        table[package] = {"init_from": card["training"]["settings"].get("init_from"), **rows}
    return table


def markdown(table: dict[str, Any], packages: list[str]) -> str:
    """The table as Markdown: one row per set and subset, one column per package."""
    rows = [k for k in table[packages[0]] if k != "init_from"]
    lines = [
        "| set: subset | materials | " + " | ".join(Path(p).name for p in packages) + " |",
        "|---|---|" + "---|" * len(packages),
    ]
    for row in rows:
        first = table[packages[0]][row]
        cells = [
            f"{r['mean']:.3f} ({r['low']:.3f}-{r['high']:.3f})" if r else "-"
            for r in (table[p][row] for p in packages)
        ]
        lines.append(f"| {row} | {first['n'] if first else 0} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", required=True, help="the lake the packages were built on")
    parser.add_argument("--start", default="cubic-lab", help="the package runs started from")
    parser.add_argument("--model", nargs="+", required=True, help="packages to read")
    parser.add_argument("--out", default=None, help="write the table as JSON here")
    args = parser.parse_args(argv)

    from lake.errors import EbsdlakeError
    from train.runs.run import open_lake

    try:
        table = overlap_table(open_lake(args.lake), args.start, args.model)
    except (EbsdlakeError, OSError, KeyError) as exc:
        print(f"start_overlap: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(markdown(table, args.model))
    if args.out:
        Path(args.out).write_text(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
