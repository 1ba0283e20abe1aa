"""Pattern pre-processing shared by simulated and experimental patterns.

The paper trained on background-corrected patterns, so the same steps run on the simulated
stream and on experimental data at prediction time: static background removal (a mean pattern
of the scan, or a given one), dynamic background removal (divide by / subtract a Gaussian-blurred
copy of each pattern), per-pattern normalisation and an optional circular mask. Every step
works on the whole (N, H, W) batch at once; the wide background blur is two matrix products
(:mod:`train.patterns.blur`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from train.patterns.blur import gaussian_blur
from train.patterns.errors import PatternError
from train.patterns.normalize_cpu import correct_and_normalize

__all__ = [
    "PreprocessConfig",
    "PreprocessError",
    "circular_mask",
    "gaussian_blur",
    "preprocess",
    "preprocess_tensor",
]


class PreprocessError(PatternError):
    """A pre-processing option or input array is invalid."""


@dataclass(frozen=True)
class PreprocessConfig:
    """What to do to each pattern, in this order.

    Parameters
    ----------
    static_background
        "none", "mean" (the mean of the patterns passed together: a scan's static background;
        for experimental data), or "given" (use the ``background`` argument).
    static_operation
        "subtract" or "divide" for the static background.
    dynamic_background_sigma
        Gaussian sigma of the dynamic background as a fraction of the pattern width
        (None: off). kikuchipy's default of width/8 is 0.125.
    dynamic_operation
        "subtract" or "divide" for the dynamic background.
    normalize
        "zscore" (zero mean, unit standard deviation per pattern), "minmax" (to [0, 1]) or
        "none".
    circular_mask
        Zero everything outside the inscribed circle (after normalisation), as for round
        phosphor screens.
    """

    static_background: str = "none"
    static_operation: str = "subtract"
    dynamic_background_sigma: float | None = 0.125
    dynamic_operation: str = "divide"
    normalize: str = "zscore"
    circular_mask: bool = False

    def __post_init__(self) -> None:
        checks = {
            "static_background": (self.static_background, ("none", "mean", "given")),
            "static_operation": (self.static_operation, ("subtract", "divide")),
            "dynamic_operation": (self.dynamic_operation, ("subtract", "divide")),
            "normalize": (self.normalize, ("zscore", "minmax", "none")),
        }
        for name, (value, allowed) in checks.items():
            if value not in allowed:
                raise PreprocessError(f"PreprocessConfig.{name}={value!r}: not one of {allowed}")
        sigma = self.dynamic_background_sigma
        if sigma is not None and not 0 < sigma < 1:
            raise PreprocessError(
                f"PreprocessConfig.dynamic_background_sigma={sigma}: a width fraction in (0, 1)"
            )


def preprocess(
    patterns: np.ndarray,
    cfg: PreprocessConfig | None = None,
    background: np.ndarray | None = None,
) -> np.ndarray:
    """Pre-process a stack of patterns (NumPy in and out).

    Parameters
    ----------
    patterns
        (N, H, W) or (H, W) patterns, any real dtype.
    cfg
        Steps to apply; default :class:`PreprocessConfig`.
    background
        (H, W) static background for ``static_background="given"``.

    Returns
    -------
    numpy.ndarray
        float32 with the input's shape.
    """
    arr = np.asarray(patterns)
    if arr.ndim not in (2, 3) or not np.issubdtype(arr.dtype, np.number):
        raise PreprocessError(f"patterns: need a real (N, H, W) or (H, W) array, got {arr.shape}")
    single = arr.ndim == 2
    tensor = torch.as_tensor(
        np.ascontiguousarray(arr[None] if single else arr), dtype=torch.float32
    )
    bg = None if background is None else torch.as_tensor(np.asarray(background, np.float32))
    out = preprocess_tensor(tensor, cfg or PreprocessConfig(), bg).numpy()
    return out[0] if single else out


def preprocess_tensor(
    patterns: torch.Tensor,
    cfg: PreprocessConfig,
    background: torch.Tensor | None = None,
    cpu_kernel: bool = True,
) -> torch.Tensor:
    """Torch version of :func:`preprocess` on (N, H, W) float tensors, on their device.

    ``cpu_kernel``: on CPU, do the dynamic background removal and the normalisation in one
    Numba loop (:mod:`train.patterns.normalize_cpu`, ~10x fewer memory passes); False keeps the tensor
    ops (the reference; also what non-CPU devices run). Both agree to float32 rounding.
    """
    x = patterns.to(torch.float32)
    if cfg.static_background != "none":
        if cfg.static_background == "mean":
            bg = x.mean(dim=0, keepdim=True)
        elif background is None or tuple(background.shape) != tuple(x.shape[-2:]):
            raise PreprocessError(
                f"static background: need an (H, W)={tuple(x.shape[-2:])} background array"
            )
        else:
            bg = background.to(x.device, torch.float32)[None]
        x = _apply(x, bg, cfg.static_operation)
    if cfg.dynamic_background_sigma is not None:
        sigma_px = cfg.dynamic_background_sigma * x.shape[-1]
        background_px = gaussian_blur(x, sigma_px)
        if cpu_kernel and x.device.type == "cpu":
            x = torch.from_numpy(
                correct_and_normalize(
                    x.numpy(), background_px.numpy(), cfg.dynamic_operation, cfg.normalize
                )
            )
        else:
            x = _normalize(_apply(x, background_px, cfg.dynamic_operation), cfg.normalize)
    else:
        x = _normalize(x, cfg.normalize)
    if cfg.circular_mask:
        x = x * circular_mask(x.shape[-2:], x.device)
    return x


def _apply(x: torch.Tensor, bg: torch.Tensor, operation: str) -> torch.Tensor:
    if operation == "subtract":
        return x - bg
    scale = bg.abs().amax(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    return x / (bg + 1e-6 * scale).clamp_min(1e-6 * scale)


def _normalize(x: torch.Tensor, how: str) -> torch.Tensor:
    if how == "zscore":
        mean = x.mean(dim=(-2, -1), keepdim=True)
        std = x.std(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
        return (x - mean) / std
    if how == "minmax":
        lo = x.amin(dim=(-2, -1), keepdim=True)
        hi = x.amax(dim=(-2, -1), keepdim=True)
        return (x - lo) / (hi - lo).clamp_min(1e-12)
    return x


def circular_mask(shape: tuple[int, int], device: torch.device | str = "cpu") -> torch.Tensor:
    """(H, W) float mask: 1 inside the circle inscribed in the pattern, 0 outside."""
    h, w = int(shape[0]), int(shape[1])
    rows = torch.arange(h, device=device, dtype=torch.float32) - (h - 1) / 2
    cols = torch.arange(w, device=device, dtype=torch.float32) - (w - 1) / 2
    r2 = rows[:, None] ** 2 + cols[None, :] ** 2
    return (r2 <= (min(h, w) / 2) ** 2).to(torch.float32)
