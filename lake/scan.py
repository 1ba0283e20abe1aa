"""One pass over the store's group metadata, shared by the catalog, ``verify`` and the CLI.

Reads only ``zarr.json`` files (never array chunks): one listing of ``structures/``, one of
``masters/``, one per material under ``masters/`` (concurrent on S3), then all metadata files
fetched concurrently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lake.layout import MASTERS, STRUCTURES, master_path, material_masters_path, structure_path
from lake.store import StoreHandle


@dataclass(frozen=True)
class LakeScan:
    """Group metadata of every structure and master group found in the store.

    Attributes
    ----------
    structures
        material id -> parsed ``zarr.json`` (None when the folder exists without metadata).
    masters
        (material id, variant) -> parsed ``zarr.json`` (None when missing, a dict with key
        ``"_unreadable"`` when it does not parse).
    """

    structures: dict[str, dict[str, Any] | None]
    masters: dict[tuple[str, str], dict[str, Any] | None]


def scan(handle: StoreHandle) -> LakeScan:
    """Collect the metadata of every structure and master group (see module docstring)."""
    structure_ids = handle.list_children(STRUCTURES)
    material_ids = handle.list_children(MASTERS)
    variants = handle.list_children_many([material_masters_path(m) for m in material_ids])
    pairs = [
        (mid, variant) for mid in material_ids for variant in variants[material_masters_path(mid)]
    ]
    groups = [structure_path(m) for m in structure_ids] + [master_path(*p) for p in pairs]
    metadata = handle.read_metadata_many(groups)
    return LakeScan(
        structures={m: metadata[structure_path(m)] for m in structure_ids},
        masters={p: metadata[master_path(*p)] for p in pairs},
    )
