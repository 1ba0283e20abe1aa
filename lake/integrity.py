"""Checksums on every read, and the ``damaged`` marker that ``lake verify --repair`` writes.

Every complete master group stores the CRC-32C of each chunk's decoded bytes (see
``lake/README.md``). Readers check them as they read (one CRC per chunk, a fraction of the
decoding time: docs/PERFORMANCE.md, section "Lake reads"), so corrupted data never reaches a
caller silently. ``lake verify`` checks the whole lake; with ``--repair`` it rewrites the group
metadata of each corrupt master with ``status: "damaged"`` (its settings kept), which ``lake ls``
shows and ``simulate`` redoes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import zarr

from lake.chunk_io import group_document, put_documents, read_planes
from lake.encoding import CHECKSUM_ALGORITHM, crc32c_of
from lake.errors import ChecksumError, LakeFormatError
from lake.layout import (
    CHECKSUMS_KEY,
    DAMAGED,
    MASTER_ARRAY,
    METADATA_FILE,
    REASON_KEY,
    STATUS_KEY,
    master_path,
)
from lake.store import StoreHandle, translate_errors

REPAIR_HINT = "`ebsdlake lake verify --repair` marks it damaged, then `ebsdlake simulate` redoes it"
"""How to fix a master whose chunks fail their checksums (appended to every such error)."""


def stored_checksums(attrs: Mapping[str, Any], name: str, where: str) -> list[int]:
    """The per-chunk CRC-32C list of array ``name`` from a complete group's attributes.

    Raises :class:`LakeFormatError` naming the group when none (or another algorithm) is stored.
    """
    checksums = attrs.get(CHECKSUMS_KEY)
    if not isinstance(checksums, Mapping) or checksums.get("algorithm") != CHECKSUM_ALGORITHM:
        raise LakeFormatError(f"{where}: no {CHECKSUM_ALGORITHM} checksums stored; {REPAIR_HINT}")
    values = checksums.get(name)
    if not isinstance(values, list) or not all(isinstance(v, int) for v in values):
        raise LakeFormatError(f"{where}: no checksums stored for array {name!r}; {REPAIR_HINT}")
    return values


def check_chunks(
    data: np.ndarray, chunks: Sequence[int], expected: Sequence[int], where: str, name: str
) -> None:
    """Compare the CRC-32C of each chunk just read with the stored one.

    ``data`` holds the chunks ``chunks`` (indices along axis 0, one chunk per index) in that
    order. Raises :class:`ChecksumError` naming the group, the array and the first bad chunk.
    """
    for slot, chunk in enumerate(chunks):
        if not 0 <= chunk < len(expected):
            raise LakeFormatError(
                f"{where}: {name!r} has no stored checksum for chunk {chunk} "
                f"({len(expected)} stored); {REPAIR_HINT}"
            )
        actual = crc32c_of(data[slot])
        if actual != expected[chunk]:
            raise ChecksumError(
                f"{where}: {name!r} chunk {chunk} fails its CRC-32C (stored "
                f"{expected[chunk]:#010x}, read {actual:#010x}); {REPAIR_HINT}"
            )


def checked_planes(
    url: str, array: zarr.Array, index: int | list[int] | slice, expected: list[int], where: str
) -> np.ndarray:
    """Energy planes ``index`` of a master array, each chunk checked against its CRC-32C."""
    with translate_errors(url, f"reading {where}"):
        try:
            data = read_planes(array, index)
        except LakeFormatError:
            raise
        except (RuntimeError, ValueError) as exc:  # a codec refusing a corrupted chunk
            raise LakeFormatError(
                f"{where}: a chunk does not decode ({type(exc).__name__}: {exc}); {REPAIR_HINT}"
            ) from None
    planes = list(range(array.shape[0]))[index] if not isinstance(index, list) else index
    if isinstance(planes, int):
        check_chunks(data[None], [planes], expected, where, MASTER_ARRAY)
    else:
        check_chunks(data, planes, expected, where, MASTER_ARRAY)
    return data


def lazy_planes(
    url: str, array: zarr.Array, index: int | list[int] | slice, expected: list[int], where: str
) -> Any:
    """A dask array of energy planes ``index``: one task per chunk, each checked when read."""
    import dask
    import dask.array as da

    planes = list(range(array.shape[0]))[index] if not isinstance(index, list) else index
    shape, dtype = tuple(array.shape[1:]), array.dtype
    read = dask.delayed(checked_planes, pure=False)
    blocks = [
        da.from_delayed(read(url, array, plane, expected, where), shape, dtype=dtype)
        for plane in ([planes] if isinstance(planes, int) else planes)
    ]
    if isinstance(planes, int):
        return blocks[0]
    if not blocks:
        return da.empty((0, *shape), dtype=dtype)
    return da.stack(blocks)


def mark_damaged(handle: StoreHandle, material_id: str, variant: str, reason: str) -> None:
    """Rewrite a master group's metadata with ``status: "damaged"`` and the reason.

    The attributes (simulation settings) are kept so ``lake ls`` still shows what the master
    was; readers refuse it and ``simulate`` redoes it. One metadata PUT (atomic).
    """
    path = master_path(material_id, variant)
    metadata = handle.read_metadata(path) or {}
    attributes = dict(metadata.get("attributes", {})) if "_unreadable" not in metadata else {}
    attributes.update(
        {
            "material_id": material_id,
            "variant": variant,
            STATUS_KEY: DAMAGED,
            REASON_KEY: str(reason),
            "damaged_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
    )
    with translate_errors(handle.url, f"marking {path} damaged"):
        put_documents(handle.zarr_store, {f"{path}/{METADATA_FILE}": group_document(attributes)})
