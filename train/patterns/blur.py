"""Gaussian blurs of pattern batches with reflected edges, fast on CPU and GPU.

The dynamic background of the paper's pre-processing is a wide Gaussian blur (sigma = width/8,
29 px at 229 x 229). As a separable convolution with a 173-tap kernel, PyTorch's CPU convolution
needed 1.7 s per batch of 32, 25 times the projection itself. The blur is linear, so along one
axis it is an ``n x n`` matrix ``M`` (the reflect-padding folded in); a batch is blurred by two
matrix products ``M_rows @ x @ M_cols^T``: the same operator, computed by BLAS (or cuBLAS) in
~20x less time. :func:`gaussian_blur_reference` keeps the padded convolution as the
straightforward reference the tests compare against.

Kernel (both paths): ``exp(-t^2 / (2 sigma^2))`` for integer ``|t| <= ceil(3 sigma)``, normalised
to sum 1, the radius clamped to ``n - 1`` so one reflection suffices; edges reflect without
repeating the edge pixel (``d c b | a b c d | c b a``, PyTorch's and NumPy's "reflect").
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from train.patterns.errors import PatternError


class BlurError(PatternError):
    """A blur sigma or input shape is invalid."""


def kernel_radius(sigma_px: float, length: int) -> int:
    """Half-width in pixels of the truncated kernel (``ceil(3 sigma)``, at most ``length - 1``)."""
    return max(1, min(int(math.ceil(3 * sigma_px)), int(length) - 1))


def gaussian_kernel(sigma_px: float, radius: int) -> np.ndarray:
    """float64 (2 * radius + 1,) Gaussian taps for ``sigma_px`` (pixels), summing to 1."""
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (t / float(sigma_px)) ** 2)
    return taps / taps.sum()


@lru_cache(maxsize=32)
def reflect_blur_matrix(length: int, sigma_px: float, radius: int) -> np.ndarray:
    """The 1-D blur with reflected edges as a matrix: ``blurred = M @ signal``.

    Memoised (a pure function of its arguments; bounded to 32 shapes), read-only.

    Parameters
    ----------
    length
        Samples along the axis (pixels).
    sigma_px
        Gaussian sigma in pixels (> 0).
    radius
        Kernel half-width in pixels, 1 to ``length - 1`` (see :func:`kernel_radius`).

    Returns
    -------
    numpy.ndarray
        float64 (length, length); row ``i`` holds the weight of every input sample in output
        ``i``, so each row sums to 1.
    """
    if length < 2 or not sigma_px > 0 or not 1 <= radius < length:
        raise BlurError(
            f"blur matrix: need length >= 2, sigma > 0 px, 1 <= radius < length; "
            f"got {length}, {sigma_px}, {radius}"
        )
    taps = gaussian_kernel(sigma_px, radius)
    out_index = np.repeat(np.arange(length), taps.size)
    src = out_index + np.tile(np.arange(-radius, radius + 1), length)
    src = np.where(src < 0, -src, src)
    src = np.where(src > length - 1, 2 * (length - 1) - src, src)
    matrix = np.zeros((length, length), dtype=np.float64)
    np.add.at(matrix, (out_index, src), np.tile(taps, length))
    matrix.setflags(write=False)
    return matrix


def gaussian_blur(x: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Blur (N, H, W) patterns with one Gaussian of ``sigma_px`` pixels, reflected edges.

    Two matrix products (rows, then columns) on the tensor's device; equal to
    :func:`gaussian_blur_reference` to float32 rounding (tested: max error < 1e-5 of the
    largest input value).
    """
    if sigma_px <= 0:
        return x
    h, w = int(x.shape[-2]), int(x.shape[-1])
    radius = kernel_radius(sigma_px, min(h, w))
    rows = _operator(h, sigma_px, radius, x)
    cols = rows if w == h else _operator(w, sigma_px, radius, x)
    return torch.matmul(rows, torch.matmul(x, cols.T))


def _operator(length: int, sigma_px: float, radius: int, like: torch.Tensor) -> torch.Tensor:
    matrix = reflect_blur_matrix(length, float(sigma_px), radius)
    return torch.tensor(matrix, dtype=like.dtype, device=like.device)


def gaussian_blur_each(x: torch.Tensor, sigmas_px: torch.Tensor) -> torch.Tensor:
    """Blur each of (N, H, W) patterns with its own sigma (pixels), in one grouped convolution.

    Meant for the small detector-blur augmentation (sigma ~ 1 px). Every kernel is zero-padded
    to the largest radius, so each pattern sees exactly its own truncated kernel, as
    :func:`gaussian_blur_reference` applied pattern by pattern.
    """
    sig = [float(s) for s in sigmas_px.reshape(-1).tolist()]
    if len(sig) != x.shape[0]:
        raise BlurError(f"{len(sig)} blur sigmas for {x.shape[0]} patterns")
    if not any(s > 0 for s in sig):
        return x
    side = min(int(x.shape[-2]), int(x.shape[-1]))
    big = max(kernel_radius(s, side) for s in sig if s > 0)
    bank = np.zeros((len(sig), 2 * big + 1), dtype=np.float64)
    for i, s in enumerate(sig):
        if s > 0:
            r = kernel_radius(s, side)
            bank[i, big - r : big + r + 1] = gaussian_kernel(s, r)
        else:
            bank[i, big] = 1.0
    taps = torch.as_tensor(bank, dtype=x.dtype, device=x.device)
    y = torch.nn.functional.pad(x.unsqueeze(0), (big, big, big, big), mode="reflect")
    y = torch.nn.functional.conv2d(y, taps.view(-1, 1, 1, 2 * big + 1), groups=len(sig))
    y = torch.nn.functional.conv2d(y, taps.view(-1, 1, 2 * big + 1, 1), groups=len(sig))
    return y.squeeze(0)


def gaussian_blur_reference(x: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Straightforward separable convolution of (N, H, W) with reflect padding (slow on CPU)."""
    if sigma_px <= 0:
        return x
    radius = kernel_radius(sigma_px, min(x.shape[-2:]))
    taps = torch.as_tensor(gaussian_kernel(sigma_px, radius), dtype=x.dtype, device=x.device)
    y = torch.nn.functional.pad(x.unsqueeze(1), (radius,) * 4, mode="reflect")
    y = torch.nn.functional.conv2d(y, taps.view(1, 1, 1, -1))
    y = torch.nn.functional.conv2d(y, taps.view(1, 1, -1, 1))
    return y.squeeze(1)
