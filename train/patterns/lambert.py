"""Square-Lambert lookup in PyTorch: unit vectors to master-pattern pixels, and bilinear sampling.

This follows EMsoft's (and kikuchipy's) square Lambert map: a unit vector ``(x, y, z)`` maps to
the square ``[-sqrt(pi/2), sqrt(pi/2)]^2`` of its hemisphere (north for ``z >= 0``); the square
spans the ``n x n`` master with its centre at pixel ``(n - 1) / 2``; rows follow ``Y``, columns
follow ``X``. All arithmetic stays in the input dtype (float32 is accurate to ~0.01 pixel because
``1 - |z|`` is computed as ``(x^2 + y^2) / (1 + |z|)``, free of cancellation near the poles).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

_SQRT_PI_OVER_2 = math.sqrt(math.pi) / 2.0
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT_HALF_PI = math.sqrt(math.pi / 2.0)


def lambert_pixels(
    x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, npx: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fractional (row, column) master pixel of unit vectors, in ``[0, npx - 1]``.

    Parameters
    ----------
    x, y, z
        Components of unit vectors, any equal shapes, crystal frame.
    npx
        Side of the square master in pixels (EMsoft's ``2 * npx + 1``).

    Returns
    -------
    tuple of torch.Tensor
        Row and column coordinates, same shape and dtype as ``x``.
    """
    ax, ay = x.abs(), y.abs()
    radius = torch.sqrt(2.0 * (x * x + y * y) / (1.0 + z.abs()))  # sqrt(2 (1 - |z|))
    x_major = ay <= ax
    big = torch.where(x_major, ax, ay).clamp_min(1e-30)
    small = torch.where(x_major, y, x)
    sign_big = torch.where(x_major, torch.sign(x), torch.sign(y))
    along = sign_big * radius * _SQRT_PI_OVER_2
    across = radius * _TWO_OVER_SQRT_PI * torch.atan(small / big)
    lam_x = torch.where(x_major, along, across)
    lam_y = torch.where(x_major, across, along)
    half = (npx - 1) / 2.0
    to_px = half / _SQRT_HALF_PI
    return lam_y * to_px + half, lam_x * to_px + half


def bilinear_gather(
    flat_masters: torch.Tensor,
    plane_offset: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    npx: int,
) -> torch.Tensor:
    """Bilinear intensities from flattened master planes, as kikuchipy interpolates.

    Parameters
    ----------
    flat_masters
        1-D view of all master planes, each ``npx * npx`` pixels.
    plane_offset
        int64 index of the first pixel of the plane each sample reads, broadcastable to ``rows``.
    rows, cols
        Fractional pixel coordinates in ``[0, npx - 1]``.
    npx
        Side of each square plane.
    """
    r0f = rows.floor().clamp_(0, npx - 1)
    c0f = cols.floor().clamp_(0, npx - 1)
    dr = rows - r0f
    dc = cols - c0f
    r0 = r0f.to(torch.int64)
    c0 = c0f.to(torch.int64)
    r1 = (r0 + 1).clamp_(max=npx - 1)
    c1 = (c0 + 1).clamp_(max=npx - 1)
    top = plane_offset + r0 * npx
    bottom = plane_offset + r1 * npx
    v00 = flat_masters.take(top + c0)
    v01 = flat_masters.take(top + c1)
    v10 = flat_masters.take(bottom + c0)
    v11 = flat_masters.take(bottom + c1)
    upper = torch.lerp(v00, v01, dc)
    lower = torch.lerp(v10, v11, dc)
    return torch.lerp(upper, lower, dr)


def project_cpu_fused(
    flat_masters: np.ndarray,
    npx: int,
    material_index: np.ndarray,
    rotations: np.ndarray,
    direction_cosines: np.ndarray,
) -> np.ndarray:
    """CPU fast path: rotation, Lambert lookup and bilinear sampling fused in one Numba loop.

    Same arithmetic as :func:`lambert_pixels` and :func:`bilinear_gather` but without the
    dozen full-size temporaries the tensor version writes, so it runs from cache; the patterns
    are split over threads (``numba.set_num_threads``).

    Parameters
    ----------
    flat_masters
        float32 1-D view of (M, 2, npx, npx) masters.
    npx
        Side of each master plane.
    material_index
        int64 (B,) master of each pattern.
    rotations
        float64 (B, 3, 3) sample-to-crystal rotation matrices.
    direction_cosines
        float32 (1 or B, 3, P) unit rays in the sample frame.

    Returns
    -------
    numpy.ndarray
        float32 (B, P) intensities.
    """
    out = np.empty((material_index.shape[0], direction_cosines.shape[2]), dtype=np.float32)
    _fused_kernel(flat_masters, int(npx), material_index, rotations, direction_cosines, out)
    return out


@numba.njit(inline="always", fastmath=True, cache=True)
def _atan_unit(t):  # pragma: no cover - compiled
    """arctan(t) for |t| <= 1 by an odd minimax polynomial, |error| < 2e-6 rad."""
    t2 = t * t
    poly = -0.01172120
    poly = 0.05265332 + t2 * poly
    poly = -0.11643287 + t2 * poly
    poly = 0.19354346 + t2 * poly
    poly = -0.33262347 + t2 * poly
    poly = 0.99997726 + t2 * poly
    return t * poly


@numba.njit(parallel=True, fastmath=True, cache=True, nogil=True)
def _fused_kernel(flat, npx, index, rot, dc, out):  # pragma: no cover - compiled
    n_pat, n_px = out.shape
    half = (npx - 1) / 2.0
    to_px = half / _SQRT_HALF_PI
    plane = npx * npx
    for b in numba.prange(n_pat):
        d = 0 if dc.shape[0] == 1 else np.int64(b)
        r = rot[b]
        base = index[b] * 2 * plane
        for p in range(n_px):
            dx = dc[d, 0, p]
            dy = dc[d, 1, p]
            dz = dc[d, 2, p]
            x = r[0, 0] * dx + r[0, 1] * dy + r[0, 2] * dz
            y = r[1, 0] * dx + r[1, 1] * dy + r[1, 2] * dz
            z = r[2, 0] * dx + r[2, 1] * dy + r[2, 2] * dz
            ax = abs(x)
            ay = abs(y)
            radius = np.sqrt(2.0 * (x * x + y * y) / (1.0 + abs(z)))
            if ay <= ax:
                big = ax if ax > 1e-30 else 1e-30
                lam_x = np.sign(x) * radius * _SQRT_PI_OVER_2
                lam_y = radius * _TWO_OVER_SQRT_PI * _atan_unit(y / big)
            else:
                lam_x = radius * _TWO_OVER_SQRT_PI * _atan_unit(x / ay)
                lam_y = np.sign(y) * radius * _SQRT_PI_OVER_2
            row = lam_y * to_px + half
            col = lam_x * to_px + half
            r0 = min(max(int(np.floor(row)), 0), npx - 1)
            c0 = min(max(int(np.floor(col)), 0), npx - 1)
            fr = row - r0
            fc = col - c0
            r1 = min(r0 + 1, npx - 1)
            c1 = min(c0 + 1, npx - 1)
            start = base + (plane if z < 0 else 0)
            top = flat[start + r0 * npx + c0] * (1 - fc) + flat[start + r0 * npx + c1] * fc
            bot = flat[start + r1 * npx + c0] * (1 - fc) + flat[start + r1 * npx + c1] * fc
            out[b, p] = top * (1 - fr) + bot * fr
