"""How master arrays are chunked, compressed and checksummed.

The choice is measured in ``tests/benchmarks/test_bench_lake.py`` and recorded in
``docs/PERFORMANCE.md`` (section "Lake"):

- chunk = one energy plane with both hemispheres, ``(1, 2, 2*npx+1, 2*npx+1)``: the training
  stream reads all energies of one (material, variant) at once (a handful of ~2.9 MB objects at
  npx 300, few enough requests for S3) and sometimes a single energy plane (one object);
- codec, lossless masters (the default): plain Zstandard level 1 (no shuffle). Engine masters
  are expanded from the symmetry-reduced sector, so they hold long repeated byte runs that an
  LZ-type coder finds and a byte shuffle destroys: on a real de-ebsd Ni master zstd-1 stores
  3.97x smaller (Blosc-LZ4 + shuffle 1.72x, Blosc-zstd + shuffle 1.32x) at write and read
  speeds within the noise of storing raw bytes. For a lake shared over object storage the 4x
  in bytes moved and stored is what counts;
- codec, rounded masters (``mantissa_bits`` given, see :mod:`lake.precision`): Blosc LZ4
  level 5 with byte shuffle; the zeroed low mantissa bytes make it compress 1.7-5x and encode
  faster than unrounded data;
- lakes written with the earlier default (Blosc-LZ4 on lossless masters) read unchanged: the
  codec is recorded in each array's ``zarr.json``;
- chunk keys use the ``.`` separator (``master/c.3.0.0.0``): one flat folder per array on local
  disks instead of four nested directories per chunk (cheaper to write and to delete).

Checksums are CRC-32C (Castagnoli) of each chunk's *decoded* bytes (C order, little-endian), kept
in the group attributes, so that :func:`lake.verify.verify` detects a chunk whose stored bytes
changed even when it still decompresses.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import google_crc32c
import numpy as np
from zarr.codecs import BloscCodec, BloscShuffle, ZstdCodec

CHECKSUM_ALGORITHM = "crc32c"


def master_chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Chunk shape of a master array: one energy plane, both hemispheres, whole rows/cols."""
    return (1, *shape[1:])


def master_compressors(
    mantissa_bits: int | None = None,
) -> tuple[BloscCodec, ...] | tuple[ZstdCodec, ...]:
    """Compressor pipeline of a master array (see module docstring for the measurement).

    ``mantissa_bits`` None (lossless): Zstandard level 1. Otherwise the master was rounded and
    Blosc-LZ4 + byte shuffle pays for itself.
    """
    if mantissa_bits is None:
        return (ZstdCodec(level=1, checksum=False),)
    return (BloscCodec(cname="lz4", clevel=5, shuffle=BloscShuffle.shuffle, typesize=4),)


CHUNK_KEY_ENCODING = {"name": "default", "separator": "."}
"""Chunk keys ``c.<i>.<j>...`` (flat) rather than ``c/<i>/<j>/...``."""


def chunk_slices(shape: tuple[int, ...], chunks: tuple[int, ...]) -> Iterator[tuple[slice, ...]]:
    """Yield the selection of every chunk of an array, in C order of the chunk grid."""
    ranges = [range(0, size, step) for size, step in zip(shape, chunks, strict=True)]
    for starts in itertools.product(*ranges):
        yield tuple(
            slice(start, min(start + step, size))
            for start, step, size in zip(starts, chunks, shape, strict=True)
        )


def crc32c_of(block: np.ndarray) -> int:
    """CRC-32C of an array block's bytes in C order, little-endian."""
    data = np.ascontiguousarray(block)
    if data.dtype.byteorder == ">":
        data = data.astype(data.dtype.newbyteorder("<"))
    return int(google_crc32c.value(data.reshape(-1).view(np.uint8)))


def chunk_checksums(array: np.ndarray, chunks: tuple[int, ...]) -> list[int]:
    """CRC-32C of every chunk of an in-memory array, in chunk-grid C order."""
    return [crc32c_of(array[sel]) for sel in chunk_slices(array.shape, chunks)]
