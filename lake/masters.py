"""Writing and reading master-pattern groups ``masters/<material_id>/<variant>``.

Write protocol (atomic for readers): clear any old group, write the group metadata with
``status: "writing"`` (together with the arrays' metadata), write every chunk of ``master``
and ``weights``, then write the group metadata once more with ``status: "complete"`` and the
per-chunk checksums. Each metadata write
is a single object PUT (S3) or an atomic rename (local), so a reader sees either the old
complete state, nothing, a "writing" group (treated as invisible), or the new complete group.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr
import zarr

from lake.chunk_io import (
    array_document,
    array_metadata,
    bind_array,
    group_document,
    put_documents,
    write_arrays,
)
from lake.encoding import (
    CHECKSUM_ALGORITHM,
    CHUNK_KEY_ENCODING,
    chunk_checksums,
    master_chunks,
    master_compressors,
)
from lake.errors import (
    LakeFormatError,
    LakeInputError,
    LakeNotFoundError,
    MasterUnavailableError,
)
from lake.integrity import check_chunks, checked_planes, lazy_planes, stored_checksums
from lake.jsonable import to_json
from lake.layout import (
    CHECKSUMS_KEY,
    COMPLETE,
    DAMAGED,
    FAILED,
    HEMISPHERES,
    INCOMPLETE,
    MASTER_ARRAY,
    MASTER_DIMS,
    MASTERS,
    METADATA_FILE,
    MISSING,
    PRECISION_KEY,
    REASON_KEY,
    RESERVED_MASTER_KEYS,
    STATUS_KEY,
    WEIGHTS_ARRAY,
    WRITING,
    master_path,
    material_masters_path,
)
from lake.precision import check_mantissa_bits, max_relative_error, round_mantissa
from lake.store import StoreHandle, translate_errors

ENERGY_TOLERANCE_KEV = 1e-3
"""Largest distance (keV) between a requested energy and a stored energy plane."""


def status_from_metadata(metadata: Mapping[str, Any] | None) -> str:
    """Map a group's parsed ``zarr.json`` to complete / incomplete / failed / missing."""
    if metadata is None:
        return MISSING
    status = metadata.get("attributes", {}).get(STATUS_KEY) if "attributes" in metadata else None
    if status == COMPLETE:
        return COMPLETE
    if status in (FAILED, DAMAGED):
        return status
    return INCOMPLETE


def _check_user_attrs(attrs: Mapping[str, Any] | None) -> dict[str, Any]:
    attrs = dict(attrs or {})
    clash = sorted(RESERVED_MASTER_KEYS.intersection(attrs))
    if clash:
        raise LakeInputError(f"master attrs: keys {clash} are reserved by the lake")
    return to_json(attrs, "master attrs")


def validate_master(
    material_id: str,
    master: np.ndarray,
    energies_kev: Sequence[float] | np.ndarray,
    weights: Sequence[float] | np.ndarray,
    npx: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Check a master and its weights; return energies and weights as float arrays.

    Raises :class:`LakeInputError` naming the material and the field for a wrong dtype
    (master must be float32), a wrong shape (``(n_energies, 2, 2*npx+1, 2*npx+1)``), a
    length mismatch, or non-finite values.
    """
    where = f"master of {material_id}"
    if not isinstance(master, np.ndarray):
        raise LakeInputError(f"{where}: expected a numpy array, got {type(master).__name__}")
    if master.dtype != np.float32:
        raise LakeInputError(f"{where}: dtype {master.dtype} is not float32")
    shape = master.shape
    if master.ndim != 4 or shape[1] != 2 or shape[2] != shape[3] or shape[2] % 2 != 1:
        raise LakeInputError(f"{where}: shape {shape} is not (n_energies, 2, 2*npx+1, 2*npx+1)")
    if shape[0] < 1:
        raise LakeInputError(f"{where}: has no energy planes")
    if npx is not None and shape[2] != 2 * int(npx) + 1:
        raise LakeInputError(f"{where}: shape {shape} does not match npx={npx} (2*npx+1 pixels)")
    energies = np.asarray(energies_kev, dtype=np.float64).reshape(-1)
    weights_arr = np.asarray(weights, dtype=np.float32).reshape(-1)
    if energies.size != shape[0]:
        raise LakeInputError(
            f"{where}: energies_kev has {energies.size} values for {shape[0]} energy planes"
        )
    if weights_arr.size != shape[0]:
        raise LakeInputError(
            f"{where}: weights has {weights_arr.size} values for {shape[0]} energy planes"
        )
    if not np.isfinite(energies).all() or not np.isfinite(weights_arr).all():
        raise LakeInputError(f"{where}: energies_kev or weights contain NaN or infinity")
    if not np.isfinite(master).all():
        raise LakeInputError(f"{where}: contains NaN or infinity")
    return energies, weights_arr


def _missing_parent_documents(handle: StoreHandle, material_id: str) -> dict[str, Any]:
    """``zarr.json`` documents of the parent groups of a master that do not exist yet."""
    parents = [MASTERS, material_masters_path(material_id)]
    found = handle.read_metadata_many(parents)
    return {
        f"{parent}/{METADATA_FILE}": group_document({})
        for parent in parents
        if found[parent] is None
    }


def write_master(
    handle: StoreHandle,
    material_id: str,
    variant: str,
    master: np.ndarray,
    energies_kev: Sequence[float] | np.ndarray,
    weights: Sequence[float] | np.ndarray,
    attrs: Mapping[str, Any] | None,
    mantissa_bits: int | None = None,
) -> None:
    """Write one master group atomically (see module docstring). Ids must be validated.

    Requests, in order (each step one concurrent batch): list and delete any old group; PUT
    the group metadata (``status: "writing"``), missing parent groups and both arrays'
    metadata; PUT every chunk; PUT the group metadata with ``status: "complete"``.
    ``mantissa_bits`` (1-23) rounds the master first (see :mod:`lake.precision`).
    """
    user_attrs = _check_user_attrs(attrs)
    where = f"master of {material_id}"
    bits = check_mantissa_bits(mantissa_bits, where)
    energies, weights_arr = validate_master(
        material_id, master, energies_kev, weights, user_attrs.get("npx")
    )
    stored = round_mantissa(master, bits) if bits is not None else np.ascontiguousarray(master)
    path = master_path(material_id, variant)
    chunks = master_chunks(stored.shape)
    base_attrs = {
        **user_attrs,
        "material_id": material_id,
        "variant": variant,
        "energies_kev": energies.tolist(),
        STATUS_KEY: WRITING,
    }
    if bits is not None:
        base_attrs[PRECISION_KEY] = {
            "mantissa_bits": bits,
            "max_relative_error": max_relative_error(bits),
        }
    master_meta = array_metadata(
        stored.shape, chunks, master_compressors(bits), MASTER_DIMS, CHUNK_KEY_ENCODING
    )
    weights_meta = array_metadata(
        weights_arr.shape, weights_arr.shape, (), ("energy",), CHUNK_KEY_ENCODING
    )
    checksums = {
        "algorithm": CHECKSUM_ALGORITHM,
        MASTER_ARRAY: chunk_checksums(stored, chunks),
        WEIGHTS_ARRAY: chunk_checksums(weights_arr, weights_arr.shape),
    }
    store = handle.zarr_store
    with translate_errors(handle.url, f"writing {path}"):
        handle.clear_prefix(path)
        put_documents(
            store,
            {
                **_missing_parent_documents(handle, material_id),
                f"{path}/{METADATA_FILE}": group_document(base_attrs),
                f"{path}/{MASTER_ARRAY}/{METADATA_FILE}": array_document(master_meta),
                f"{path}/{WEIGHTS_ARRAY}/{METADATA_FILE}": array_document(weights_meta),
            },
        )
        write_arrays(
            [
                (bind_array(store, f"{path}/{MASTER_ARRAY}", master_meta), stored),
                (bind_array(store, f"{path}/{WEIGHTS_ARRAY}", weights_meta), weights_arr),
            ]
        )
        finished = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        complete = {
            **base_attrs,
            STATUS_KEY: COMPLETE,
            CHECKSUMS_KEY: checksums,
            "written_at": finished,
        }
        put_documents(store, {f"{path}/{METADATA_FILE}": group_document(complete)})


def mark_failed(
    handle: StoreHandle,
    material_id: str,
    variant: str,
    reason: str,
    attrs: Mapping[str, Any] | None,
) -> None:
    """Replace the group by an empty one with ``status: "failed"`` and the reason."""
    user_attrs = _check_user_attrs(attrs)
    path = master_path(material_id, variant)
    finished = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    with translate_errors(handle.url, f"writing {path}"):
        handle.clear_prefix(path)
        zarr.create_group(
            handle.zarr_store,
            path=path,
            attributes={
                **user_attrs,
                "material_id": material_id,
                "variant": variant,
                STATUS_KEY: FAILED,
                REASON_KEY: str(reason),
                "written_at": finished,
            },
        )


def _check_complete(
    handle: StoreHandle, material_id: str, variant: str, metadata: dict[str, Any] | None
) -> dict[str, Any]:
    """Attributes of a complete master group; raise when missing, failed or incomplete."""
    status = status_from_metadata(metadata)
    if status == MISSING:
        raise LakeNotFoundError(
            f"{handle.url}: no master for material {material_id!r} variant {variant!r}"
        )
    if "_unreadable" in metadata:  # type: ignore[operator]
        raise LakeFormatError(
            f"{handle.url}: master {material_id!r} variant {variant!r}: {metadata['_unreadable']}"  # type: ignore[index]
        )
    if status == FAILED:
        reason = metadata["attributes"].get(REASON_KEY, "")  # type: ignore[index]
        raise MasterUnavailableError(
            f"{handle.url}: master {material_id!r} variant {variant!r} failed: {reason}"
        )
    if status == DAMAGED:
        reason = metadata["attributes"].get(REASON_KEY, "")  # type: ignore[index]
        raise MasterUnavailableError(
            f"{handle.url}: master {material_id!r} variant {variant!r} is damaged ({reason}); "
            "`ebsdlake simulate` redoes it"
        )
    if status != COMPLETE:
        raise MasterUnavailableError(
            f"{handle.url}: master {material_id!r} variant {variant!r} is incomplete "
            "(being written or interrupted)"
        )
    return dict(metadata["attributes"])  # type: ignore[index]


def open_complete(
    handle: StoreHandle, material_id: str, variant: str, name: str
) -> tuple[dict[str, Any], zarr.Array]:
    """Attributes of a complete master group and its array ``name``.

    Both ``zarr.json`` documents are fetched in one concurrent request batch, and the array
    is bound from its document without zarr probing the store again.
    """
    path = master_path(material_id, variant)
    array_path = f"{path}/{name}"
    documents = handle.read_metadata_many([path, array_path])
    attrs = _check_complete(handle, material_id, variant, documents[path])
    document = documents[array_path]
    where = f"{handle.url}: master {material_id!r} variant {variant!r}"
    if document is None:
        raise LakeNotFoundError(f"{where}: array {name!r} is missing (run `ebsdlake lake verify`)")
    if "_unreadable" in document:
        raise LakeFormatError(f"{where}: array {name!r}: {document['_unreadable']}")
    with translate_errors(handle.url, f"reading {array_path}"):
        try:
            return attrs, bind_array(handle.zarr_store, array_path, document)
        except (KeyError, TypeError, ValueError) as exc:
            raise LakeFormatError(
                f"{where}: array {name!r} has invalid metadata ({type(exc).__name__}: {exc})"
            ) from exc


def mean_bfactor_nm2(attrs: Mapping[str, Any]) -> float:
    """Mean B-factor (nm^2) over the sites listed in ``bfactors_nm2``, NaN when absent."""
    sites = attrs.get("bfactors_nm2")
    values = []
    if isinstance(sites, list):
        values = [s.get("B_nm2") for s in sites if isinstance(s, dict)]
        values = [float(v) for v in values if isinstance(v, int | float)]
    elif isinstance(sites, int | float):
        values = [float(sites)]
    return float(np.mean(values)) if values else float("nan")


def _public_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if k not in (CHECKSUMS_KEY, STATUS_KEY)}


def _energy_index(
    energies: np.ndarray, energy: float | Sequence[float] | None, where: str
) -> int | list[int] | slice:
    if energy is None:
        return slice(None)
    wanted = np.atleast_1d(np.asarray(energy, dtype=np.float64))
    indices = []
    for value in wanted:
        distance = np.abs(energies - value)
        best = int(np.argmin(distance))
        if distance[best] > ENERGY_TOLERANCE_KEV:
            raise LakeNotFoundError(
                f"{where}: no energy plane at {value:g} keV (stored: {energies.min():g}-"
                f"{energies.max():g} keV, {energies.size} planes)"
            )
        indices.append(best)
    return indices[0] if np.ndim(energy) == 0 else indices


def read_master(
    handle: StoreHandle,
    material_id: str,
    variant: str,
    energy: float | Sequence[float] | None,
    lazy: bool,
) -> xr.DataArray:
    """Read a complete master as a labelled array; see :meth:`lake.Lake.master`."""
    attrs, array = open_complete(handle, material_id, variant, MASTER_ARRAY)
    energies = np.asarray(attrs["energies_kev"], dtype=np.float64)
    where = f"master {material_id!r} variant {variant!r}"
    index = _energy_index(energies, energy, where)
    where = f"{handle.url}: {where}"
    expected = stored_checksums(attrs, MASTER_ARRAY, where)
    if lazy:
        data = lazy_planes(handle.url, array, index, expected, where)
    else:
        data = checked_planes(handle.url, array, index, expected, where)
    dims = MASTER_DIMS if not isinstance(index, int) else MASTER_DIMS[1:]
    energy_dims = ("energy",) if "energy" in dims else ()
    energy_values = energies[index] if energy_dims else float(energies[index])
    # coordinates carry their units from the start: one DataArray construction, no re-wrapping
    coords: dict[str, Any] = {
        "energy": xr.Variable(energy_dims, energy_values, attrs={"units": "keV"}),
        "hemisphere": ("hemisphere", list(HEMISPHERES)),
        "material_id": material_id,
        "variant": variant,
        "bfactor_nm2": xr.Variable((), mean_bfactor_nm2(attrs), attrs={"units": "nm^2"}),
    }
    return xr.DataArray(data, dims=dims, coords=coords, attrs=_public_attrs(attrs), name="master")


def read_weights(handle: StoreHandle, material_id: str, variant: str) -> xr.DataArray:
    """Read the Monte Carlo energy weights of a complete master, dims ``(energy,)``."""
    attrs, array = open_complete(handle, material_id, variant, WEIGHTS_ARRAY)
    energies = np.asarray(attrs["energies_kev"], dtype=np.float64)
    where = f"{handle.url}: master {material_id!r} variant {variant!r}"
    with translate_errors(handle.url, f"reading weights of {material_id!r} {variant!r}"):
        data = np.asarray(array[...])
    check_chunks(data[None], [0], stored_checksums(attrs, WEIGHTS_ARRAY, where), where, "weights")
    out = xr.DataArray(
        data,
        dims=("energy",),
        coords={"energy": energies, "material_id": material_id, "variant": variant},
        name="weights",
        attrs={"description": "Monte Carlo backscatter yield per energy bin"},
    )
    out["energy"].attrs["units"] = "keV"
    return out
