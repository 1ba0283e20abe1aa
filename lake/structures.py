"""Structure groups ``structures/<material_id>``: labels, CIF text and provenance as attributes.

A structure is a group with no arrays; all of it lives in one ``zarr.json`` that is written in a
single atomic write (object PUT or rename) with ``status: "complete"`` inside, so the
completion marker can never precede the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import zarr

from lake.errors import LakeFormatError, LakeInputError, LakeNotFoundError
from lake.jsonable import to_json
from lake.layout import COMPLETE, RESERVED_STRUCTURE_KEYS, STATUS_KEY, STRUCTURES, structure_path
from lake.store import StoreHandle, translate_errors


def put_structure(
    handle: StoreHandle, material_id: str, cif: str, attrs: Mapping[str, Any] | None
) -> None:
    """Create or replace a structure group (ids must be validated by the caller)."""
    if not isinstance(cif, str) or not cif.strip():
        raise LakeInputError(f"structure {material_id}: cif text is empty or not a string")
    user_attrs = dict(attrs or {})
    clash = sorted(RESERVED_STRUCTURE_KEYS.intersection(user_attrs))
    if clash:
        raise LakeInputError(f"structure {material_id}: attrs keys {clash} are reserved")
    payload = to_json(
        {**user_attrs, "material_id": material_id, "cif": cif, STATUS_KEY: COMPLETE},
        f"structure {material_id} attrs",
    )
    path = structure_path(material_id)
    with translate_errors(handle.url, f"writing {path}"):
        if handle.read_metadata(path) is None:
            zarr.create_group(handle.zarr_store, path=path, attributes=payload)
        else:
            zarr.open_group(handle.zarr_store, path=path, mode="r+").attrs.put(payload)


def read_structure(handle: StoreHandle, material_id: str) -> dict[str, Any]:
    """Return a structure's attributes including ``"cif"``; raise when absent."""
    metadata = handle.read_metadata(structure_path(material_id))
    if metadata is None:
        raise LakeNotFoundError(f"{handle.url}: unknown material id {material_id!r}")
    if "_unreadable" in metadata:
        raise LakeFormatError(
            f"{handle.url}: structure {material_id!r} metadata unreadable: {metadata['_unreadable']}"
        )
    attrs = dict(metadata.get("attributes", {}))
    if attrs.get(STATUS_KEY) != COMPLETE:
        raise LakeNotFoundError(f"{handle.url}: structure {material_id!r} is incomplete")
    attrs.pop(STATUS_KEY, None)
    return attrs


def structure_ids(handle: StoreHandle) -> list[str]:
    """Ids of every complete structure, sorted."""
    names = handle.list_children(STRUCTURES)
    metadata = handle.read_metadata_many([structure_path(n) for n in names])
    return [
        name
        for name in names
        if (meta := metadata[structure_path(name)]) is not None
        and meta.get("attributes", {}).get(STATUS_KEY) == COMPLETE
    ]
