"""The simulation cost of a model build, by crystal system, in its model card.

Read from the masters' own wall times (``simulate.cost``), so a build that reused masters
simulated earlier still reports what they cost.
"""

from __future__ import annotations

import json
from pathlib import Path


def master_costs(lake_url: str, storage_options: dict | None, material_ids: list[str]) -> list:
    """Seconds per master by crystal system for ``material_ids`` (``SystemCost`` rows)."""
    from lake import Lake
    from simulate.cost import cost_by_crystal_system

    lake = Lake.open(lake_url, storage_options=storage_options or {}, mode="r")
    return cost_by_crystal_system(lake, list(material_ids))


def add_master_costs(package: Path, costs: list) -> None:
    """Write ``costs`` into the package's card (``build.seconds_per_master``) and a table into
    ``card.md``."""
    if not costs:
        return
    card_path = package / "card.json"
    card = json.loads(card_path.read_text())
    card.setdefault("build", {})["seconds_per_master"] = [cost.to_dict() for cost in costs]
    card_path.write_text(json.dumps(card, indent=2, sort_keys=True))
    lines = [
        "",
        "## Simulation cost by crystal system",
        "",
        "Wall time per master (one actor thread, Monte Carlo included); folded: share computed",
        "on the symmetry-reduced directions only.",
        "",
        "| crystal system | masters | median (s) | mean (s) | max (s) | total (s) | folded |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {c.crystal_system} | {c.masters} | {c.median_s:.1f} | {c.mean_s:.1f} | "
            f"{c.max_s:.1f} | {c.total_s:.0f} | {c.folded:.2f} |"
            for c in costs
        ],
        "",
    ]
    with open(package / "card.md", "a") as handle:
        handle.write("\n".join(lines))
