"""The simulation cost of a model build, by crystal system, in its model card.

Read from the masters' own wall times (``simulate.cost``), so a build that reused masters
simulated earlier still reports what they cost.
"""

from __future__ import annotations

from pathlib import Path

from infra.app.card_sections import add_to_card, markdown_table


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

    def change(card: dict) -> None:
        card.setdefault("build", {})["seconds_per_master"] = [cost.to_dict() for cost in costs]

    header = (
        "crystal system", "masters", "median (s)", "mean (s)", "max (s)", "total (s)", "folded"
    )  # fmt: skip
    rows = [
        (c.crystal_system, c.masters, f"{c.median_s:.1f}", f"{c.mean_s:.1f}", f"{c.max_s:.1f}",
         f"{c.total_s:.0f}", f"{c.folded:.2f}")
        for c in costs
    ]  # fmt: skip
    lines = [
        "",
        "## Simulation cost by crystal system",
        "",
        "Wall time per master (one actor thread, Monte Carlo included); folded: share computed",
        "on the symmetry-reduced directions only.",
        "",
        *markdown_table(header, rows),
        "",
    ]
    add_to_card(package, change, lines)
