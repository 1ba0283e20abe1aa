"""CPU fast path for "divide or subtract a background, then normalise" on pattern batches.

With PyTorch tensor ops these two steps walk the batch nine times (scale, offset, clamp,
divide, mean, standard deviation, subtract, divide, ...), each pass through memory; at 32 x 229^2
they cost as much as the projection. This Numba loop does the same arithmetic in three passes
per pattern (correct + sum, sum of squared deviations, scale), patterns split over threads.
:func:`train.patterns.preprocess.preprocess_tensor` uses it on CPU tensors; other devices keep the tensor
ops, which are the reference it is tested against.
"""

from __future__ import annotations

import numba
import numpy as np

#: ``normalize`` codes of the kernel, in :class:`train.patterns.preprocess.PreprocessConfig` terms.
NORMALIZE_CODES = {"none": 0, "zscore": 1, "minmax": 2}


def correct_and_normalize(
    patterns: np.ndarray, background: np.ndarray, operation: str, normalize: str
) -> np.ndarray:
    """Remove a per-pattern background and normalise, in one parallel loop.

    Parameters
    ----------
    patterns
        float32 (N, H, W) intensities (arbitrary units).
    background
        float32 (N, H, W) background of each pattern, same units.
    operation
        "divide" (``x / max(bg + 1e-6 s, 1e-6 s)`` with ``s = max |bg|`` per pattern, as the
        tensor path) or "subtract".
    normalize
        "zscore" (zero mean, unit sample standard deviation), "minmax" (to [0, 1]) or "none".

    Returns
    -------
    numpy.ndarray
        float32 (N, H, W), a new array.
    """
    x = np.ascontiguousarray(patterns, dtype=np.float32)
    bg = np.ascontiguousarray(background, dtype=np.float32)
    n = x.shape[0]
    out = np.empty_like(x)
    _kernel(
        x.reshape(n, -1),
        bg.reshape(n, -1),
        operation == "divide",
        NORMALIZE_CODES[normalize],
        out.reshape(n, -1),
    )
    return out


@numba.njit(inline="always", cache=True)
def _corrected(value, background, floor, divide):  # pragma: no cover - compiled
    if divide:
        return value / np.float32(max(background + floor, floor))
    return value - background


@numba.njit(parallel=True, cache=True, nogil=True)
def _kernel(x, bg, divide, mode, out):  # pragma: no cover - compiled
    n, p = x.shape
    for b in numba.prange(n):
        floor = 0.0
        if divide:
            for i in range(p):
                floor = max(floor, abs(bg[b, i]))
            floor = max(floor, 1e-12) * 1e-6
        total = 0.0
        lo = np.inf
        hi = -np.inf
        for i in range(p):
            v = _corrected(x[b, i], bg[b, i], floor, divide)
            out[b, i] = v
            total += v
            lo = min(lo, v)
            hi = max(hi, v)
        if mode == 1:
            mean = total / p
            squares = 0.0
            for i in range(p):
                d = out[b, i] - mean
                squares += d * d
            scale = 1.0 / max(np.sqrt(squares / max(p - 1, 1)), 1e-12)
            for i in range(p):
                out[b, i] = (out[b, i] - mean) * scale
        elif mode == 2:
            scale = 1.0 / max(hi - lo, 1e-12)
            for i in range(p):
                out[b, i] = (out[b, i] - lo) * scale
