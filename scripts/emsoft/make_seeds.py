"""Write EMsoft's ``resources/RandomSeeds.data`` (the repository snapshot lacks it).

EMsoft's Monte Carlo programs open the file as a gfortran *unformatted sequential* file and
read two records: the seed count (one int32) and the seeds (int32 each). Each gfortran record
is framed by its byte length as a 4-byte marker before and after the payload. The OpenCL
Monte Carlo needs ``4 * globalworkgrpsz**2 + 4`` seeds; the seeds start its per-thread
Tausworthe generators, which need large odd values, so the file holds distinct primes above
``2**24`` in an order shuffled reproducibly from ``--seed``.

Usage: ``python3 make_seeds.py OUT [--count N] [--seed S]`` (standard library only, so it
runs before any virtual environment exists).
"""

from __future__ import annotations

import argparse
import math
import random
import struct
from pathlib import Path

#: Seeds written by default: enough for ``globalworkgrpsz`` up to 500 (4 * 500**2 + 4).
DEFAULT_COUNT = 1_000_004
#: Primes are taken from this value upwards (Tausworthe seeds must exceed 127).
FIRST = 2**24


def primes_from(start: int, count: int) -> list[int]:
    """The first ``count`` primes >= ``start`` (segmented sieve of Eratosthenes)."""
    found: list[int] = []
    span = max(1 << 20, int(count * math.log(start + count * math.log(start)) * 1.2))
    low = start
    while len(found) < count:
        high = low + span
        base_limit = math.isqrt(high) + 1
        base = bytearray([1]) * (base_limit + 1)
        base[0:2] = b"\x00\x00"
        for i in range(2, math.isqrt(base_limit) + 1):
            if base[i]:
                base[i * i :: i] = bytearray(len(base[i * i :: i]))
        segment = bytearray([1]) * (high - low)
        for p in (i for i in range(2, base_limit + 1) if base[i]):
            first = max(p * p, -(-low // p) * p)
            segment[first - low :: p] = bytearray(len(segment[first - low :: p]))
        found.extend(low + i for i, flag in enumerate(segment) if flag)
        low = high
    return found[:count]


def fortran_record(payload: bytes) -> bytes:
    """One gfortran unformatted sequential record: length, payload, length (little-endian)."""
    marker = struct.pack("<i", len(payload))
    return marker + payload + marker


def write_seeds(path: Path, count: int = DEFAULT_COUNT, seed: int = 20240201) -> Path:
    """Write ``count`` shuffled prime seeds to ``path`` in EMsoft's record layout."""
    seeds = primes_from(FIRST, count)
    random.Random(seed).shuffle(seeds)
    data = fortran_record(struct.pack("<i", count))
    data += fortran_record(struct.pack(f"<{count}i", *seeds))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def main() -> None:
    """Command line: ``make_seeds.py OUT [--count N] [--seed S]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT)
    parser.add_argument("--seed", type=int, default=20240201)
    args = parser.parse_args()
    write_seeds(args.out, args.count, args.seed)


if __name__ == "__main__":
    main()
