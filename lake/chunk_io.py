"""Concurrent metadata and chunk I/O for master groups, without zarr's redundant work.

Why this module exists (profiles in docs/PERFORMANCE.md, section "Lake"):

- ``zarr.create_group`` / ``create_array`` probe the store before writing (existence checks of
  the node and of every parent: ~45 HEAD/GET/LIST requests per master group on S3). The lake
  already knows what it writes, so it builds the metadata documents in memory and PUTs them
  all at once, concurrently.
- ``array[...] = master`` copies every chunk into a fresh fill-valued buffer before encoding.
  Writing chunk by chunk (a selection that is exactly one chunk) hands zarr the caller's memory
  as is; all chunks of a master still go out in one concurrent batch.
- ``array[...]`` allocates its output filled with the fill value, then copies chunks in. Reads
  here pass an uninitialised output buffer; for uncompressed chunks on a local disk they read
  each chunk file straight into its plane of the output (``readinto``), with no copy at all.

Everything stays an ordinary Zarr v3 hierarchy: any zarr reader opens what this writes.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from numcodecs import Zstd
from zarr.abc.store import Store
from zarr.codecs import BytesCodec, ZstdCodec
from zarr.core.buffer import Buffer, default_buffer_prototype
from zarr.core.group import GroupMetadata
from zarr.core.sync import sync
from zarr.storage import LocalStore, MemoryStore, StorePath

from lake.errors import LakeFormatError
from lake.layout import METADATA_FILE

MAX_CONCURRENT_REQUESTS = 16
"""Most store requests (chunk or metadata PUT/GET) in flight at once for one master."""

ArrayIndex = int | list[int] | slice


def group_document(attributes: Mapping[str, Any]) -> Buffer:
    """The ``zarr.json`` bytes of a Zarr v3 group with ``attributes``."""
    metadata = GroupMetadata(attributes=dict(attributes), zarr_format=3)
    return metadata.to_buffer_dict(default_buffer_prototype())[METADATA_FILE]


def array_metadata(
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
    compressors: Sequence[Any],
    dimension_names: Sequence[str],
    chunk_key_encoding: Mapping[str, str],
) -> Any:
    """Zarr v3 metadata of a float32 array, built in memory (no request to the real store).

    Built by creating the array in a throwaway ``MemoryStore``, so zarr itself validates and
    normalises every field exactly as ``create_array`` would.
    """
    template = zarr.create_array(
        MemoryStore(),
        shape=shape,
        chunks=chunks,
        dtype="float32",
        compressors=tuple(compressors),
        dimension_names=tuple(dimension_names),
        chunk_key_encoding=dict(chunk_key_encoding),
        fill_value=0.0,
    )
    return template.metadata


def array_document(metadata: Any) -> Buffer:
    """The ``zarr.json`` bytes of an array's metadata."""
    return metadata.to_buffer_dict(default_buffer_prototype())[METADATA_FILE]


def bind_array(store: Store, path: str, metadata: Any) -> zarr.Array:
    """A :class:`zarr.Array` at ``path`` from metadata already in hand (object or parsed JSON)."""
    async_array = zarr.AsyncArray(
        metadata=metadata, store_path=StorePath(store, path), config={"write_empty_chunks": True}
    )
    return zarr.Array(async_array)


async def _bounded(jobs: Sequence[Coroutine[Any, Any, Any]]) -> list[Any]:
    gate = asyncio.Semaphore(MAX_CONCURRENT_REQUESTS)

    async def run(job: Coroutine[Any, Any, Any]) -> Any:
        async with gate:
            return await job

    return await asyncio.gather(*(run(job) for job in jobs))


def put_documents(store: Store, documents: Mapping[str, Buffer]) -> None:
    """Write several ``key -> bytes`` documents concurrently (one round trip on S3)."""
    sync(_bounded([store.set(key, value) for key, value in documents.items()]))


def write_arrays(arrays: Sequence[tuple[zarr.Array, np.ndarray]]) -> None:
    """Write every chunk of every ``(array, data)`` pair in one concurrent batch.

    Each array must be chunked along its first axis only (whole trailing dimensions), as the
    lake's arrays are; each chunk is written as its own exact-chunk selection so zarr encodes
    the caller's memory without copying it first.
    """
    jobs = []
    for array, data in arrays:
        step = array.chunks[0]
        if tuple(array.chunks[1:]) != tuple(data.shape[1:]):
            raise ValueError(f"array {array.path} is not chunked along its first axis only")
        for start in range(0, data.shape[0], step):
            block = data[start : start + step]
            jobs.append(array.async_array.setitem((slice(start, start + step),), block))
    sync(_bounded(jobs))


def _local_chunk_reader(array: zarr.Array) -> tuple[Path, Any] | None:
    """Folder and decoder of a first-axis-chunked float32 array on a local disk, else None.

    The decoder is ``None`` for raw little-endian chunks (read straight into the output) or a
    numcodecs ``Zstd`` for the lake's default codec (decoded straight into the output); other
    codec pipelines go through zarr.
    """
    store = array.store
    codecs = tuple(getattr(array.metadata, "codecs", ()))
    if not isinstance(store, LocalStore) or not codecs or sys.byteorder != "little":
        return None
    first, rest = codecs[0], codecs[1:]
    if not isinstance(first, BytesCodec):
        return None
    if first.endian is not None and first.endian.value != "little":
        return None
    if array.dtype != np.float32 or tuple(array.chunks) != (1, *array.shape[1:]):
        return None
    if not rest:
        decoder = None
    elif len(rest) == 1 and isinstance(rest[0], ZstdCodec):
        decoder = Zstd()
    else:
        return None
    return Path(store.root) / array.path, decoder


def _read_local_planes(
    folder: Path, decoder: Any, array: zarr.Array, planes: list[int], out: np.ndarray
) -> None:
    """Read chunk files straight into ``out`` (one plane of axis 0 per chunk), decoding zstd."""
    expected = out[0].nbytes if out.ndim == array.ndim else out.nbytes
    for slot, plane in enumerate(planes):
        key = array.metadata.encode_chunk_key((plane,) + (0,) * (array.ndim - 1))
        target = out[slot] if out.ndim == array.ndim else out
        path = folder / key
        try:
            with open(path, "rb", buffering=0) as handle:
                if decoder is None:
                    size = os.fstat(handle.fileno()).st_size
                    if size != expected:
                        raise LakeFormatError(
                            f"{path}: chunk holds {size} bytes, expected {expected} "
                            "(run `ebsdlake lake verify`)"
                        )
                    handle.readinto(memoryview(target).cast("B"))
                    continue
                encoded = handle.read()
        except FileNotFoundError as exc:
            raise LakeFormatError(
                f"{path}: chunk is missing from a complete master (run `ebsdlake lake verify`)"
            ) from exc
        try:
            decoder.decode(encoded, out=memoryview(target).cast("B"))
        except (RuntimeError, ValueError) as exc:
            raise LakeFormatError(
                f"{path}: chunk of {len(encoded)} bytes does not decode to {expected} bytes "
                f"({exc}; run `ebsdlake lake verify`)"
            ) from None


def read_planes(array: zarr.Array, index: ArrayIndex) -> np.ndarray:
    """Read energy planes ``index`` (int, list or slice of axis 0) of a master array.

    Returns a new, writable, C-contiguous float32 array: ``(2, n, n)`` for an int, else
    ``(k, 2, n, n)``.
    """
    rest = tuple(slice(None) for _ in range(array.ndim - 1))
    planes = list(range(array.shape[0]))[index] if not isinstance(index, list) else index
    shape = array.shape[1:] if isinstance(index, int) else (len(planes), *array.shape[1:])
    out = np.empty(shape, dtype=array.dtype)
    local = _local_chunk_reader(array)
    if local is not None:
        folder, decoder = local
        selected = [planes] if isinstance(planes, int) else planes
        _read_local_planes(folder, decoder, array, selected, out)
        return out
    buffer = default_buffer_prototype().nd_buffer.from_numpy_array(out)
    if isinstance(index, list):
        array.get_orthogonal_selection((index, *rest), out=buffer)
    else:
        array.get_basic_selection((index, *rest), out=buffer)
    return out
