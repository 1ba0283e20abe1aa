"""The catalog: one table row per (structure, variant), built from group metadata only."""

from __future__ import annotations

from typing import Any

import pandas as pd

from lake.layout import COMPLETE, DAMAGED, FAILED, STATUS_KEY, master_path, structure_path
from lake.masters import mean_bfactor_nm2, status_from_metadata
from lake.scan import LakeScan

STRUCTURE_COLUMNS = (
    "formula",
    "source",
    "spacegroup_number",
    "spacegroup_symbol",
    "disordered_spacegroup_number",
    "disordered_spacegroup_symbol",
    "crystal_system",
    "point_group",
    "bravais_lattice",
)
MASTER_COLUMNS = (
    "variant",
    "status",
    "npx",
    "n_energies",
    "energy_min_kev",
    "energy_max_kev",
    "bfactor_nm2",
    "engine",
    "engine_version",
    "wall_time_s",
    "failure_reason",
)
COLUMNS = ("material_id", *STRUCTURE_COLUMNS, *MASTER_COLUMNS)


def _attributes(metadata: dict[str, Any] | None) -> dict[str, Any]:
    return dict((metadata or {}).get("attributes", {}))


def _master_fields(variant: str, attrs: dict[str, Any]) -> dict[str, Any]:
    energies = attrs.get("energies_kev") or []
    status = attrs.get(STATUS_KEY)
    return {
        "variant": variant,
        "status": status,
        "npx": attrs.get("npx"),
        "n_energies": len(energies) if status == COMPLETE else None,
        "energy_min_kev": min(energies) if energies else None,
        "energy_max_kev": max(energies) if energies else None,
        "bfactor_nm2": mean_bfactor_nm2(attrs),
        "engine": attrs.get("engine"),
        "engine_version": attrs.get("engine_version"),
        "wall_time_s": attrs.get("wall_time_s"),
        "failure_reason": attrs.get("failure_reason"),
    }


def build_catalog(found: LakeScan) -> pd.DataFrame:
    """Table of complete structures and their complete, failed or damaged masters.

    Incomplete master groups (no completion marker) are omitted: they are invisible to readers.
    A structure without a visible master gets one row with ``variant`` and ``status`` NaN. A
    master whose structure is missing still gets a row (structure columns NaN), so nothing
    complete is hidden. Groups whose metadata does not parse are left out of the rows and
    named in ``table.attrs["unreadable"]`` (group path -> reason), so callers can say so.
    """
    visible: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for (mid, variant), metadata in sorted(found.masters.items()):
        if status_from_metadata(metadata) in (COMPLETE, FAILED, DAMAGED):
            visible.setdefault(mid, []).append((variant, _attributes(metadata)))
    structures = {
        mid: _attributes(meta)
        for mid, meta in found.structures.items()
        if _attributes(meta).get(STATUS_KEY) == COMPLETE
    }
    rows = []
    for mid in sorted(set(structures) | set(visible)):
        base = {"material_id": mid}
        base.update({col: structures.get(mid, {}).get(col) for col in STRUCTURE_COLUMNS})
        masters = visible.get(mid) or [(None, None)]
        for variant, attrs in masters:
            row = dict(base)
            if variant is None:
                row.update({col: None for col in MASTER_COLUMNS})
            else:
                row.update(_master_fields(variant, attrs))
            rows.append(row)
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table.attrs["unreadable"] = unreadable_groups(found)
    return table


def unreadable_groups(found: LakeScan) -> dict[str, str]:
    """Group path -> reason for every structure or master whose ``zarr.json`` does not parse."""
    groups = {structure_path(m): meta for m, meta in found.structures.items()}
    groups.update({master_path(*pair): meta for pair, meta in found.masters.items()})
    return {
        path: meta["_unreadable"]
        for path, meta in sorted(groups.items())
        if isinstance(meta, dict) and "_unreadable" in meta
    }
