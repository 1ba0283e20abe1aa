"""Optional lossy precision for master patterns: keep fewer float32 mantissa bits.

Why: float32 master intensities carry 23 mantissa bits of which the low ones are numerical
noise, so lossless codecs gain only ~1.2x on them. Rounding to ``mantissa_bits`` explicit bits
(round half to even, as numcodecs' BitRound does) zeroes the low bits so that Blosc-LZ4 with
byte shuffle compresses 1.7-5x, and *faster* than the unrounded data. The largest relative
error is ``2**-(mantissa_bits + 1)``: 6.1e-5 at 13 bits, far below what the Pearson-correlation
comparisons of projected patterns can see (docs/PERFORMANCE.md, section "Lake", measures it).
The dtype stays float32, so readers need no codec to undo anything.
"""

from __future__ import annotations

import numpy as np

from lake.errors import LakeInputError

FLOAT32_MANTISSA_BITS = 23
"""Explicit mantissa bits of an IEEE-754 float32."""


def check_mantissa_bits(bits: object, where: str) -> int | None:
    """Return ``bits`` as an int in 1..23, or None; raise :class:`LakeInputError` otherwise."""
    if bits is None:
        return None
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer):
        raise LakeInputError(f"{where}: mantissa_bits={bits!r} is not an integer")
    if not 1 <= int(bits) <= FLOAT32_MANTISSA_BITS:
        raise LakeInputError(
            f"{where}: mantissa_bits={bits} is outside 1-{FLOAT32_MANTISSA_BITS} "
            "(float32 has 23 explicit mantissa bits)"
        )
    return int(bits)


def max_relative_error(bits: int) -> float:
    """Largest relative rounding error (dimensionless) when keeping ``bits`` mantissa bits."""
    return 2.0 ** -(bits + 1)


def round_mantissa(values: np.ndarray, bits: int) -> np.ndarray:
    """A new float32 array with each value rounded to ``bits`` explicit mantissa bits.

    Round half to even on the bit pattern: add ``half - 1`` plus the lowest kept bit, then
    clear the dropped bits. The sign bit is untouched, so negative values round by magnitude.
    A carry out of the mantissa correctly bumps the exponent. ``bits == 23`` returns a copy.
    """
    data = np.ascontiguousarray(values, dtype=np.float32)
    drop = FLOAT32_MANTISSA_BITS - bits
    if drop == 0:
        return data.copy()
    pattern = data.view(np.uint32)
    rounded = np.right_shift(pattern, np.uint32(drop))
    np.bitwise_and(rounded, np.uint32(1), out=rounded)
    rounded += np.uint32((1 << (drop - 1)) - 1)
    rounded += pattern
    rounded &= np.uint32((0xFFFFFFFF << drop) & 0xFFFFFFFF)
    return rounded.view(np.float32)
