"""A simulated pattern as a camera records it: weak bands on a bright, uneven background.

Simulated Kikuchi patterns are all signal; a real one is a few per cent of band contrast on the
backscatter background, with what the static background correction leaves of it (smooth
blotches) and shot noise of the counts. After the dynamic background correction and
normalisation that a run applies, a real pattern is therefore far noisier than a simulation;
training on this degradation closes most of that gap.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

BLOTCH_GRID = 10
"""Side of the random grid whose bicubic upsampling makes the residual background (blotches of
about a tenth of the pattern)."""


def _log_uniform(n: int, bounds: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    low, high = (torch.tensor(float(v)).log() for v in bounds)
    return (low + torch.rand(n, generator=generator) * (high - low)).exp()


def residual_background(
    n: int, shape: tuple[int, int], amplitude: float, generator: torch.Generator
) -> torch.Tensor:
    """(n, H, W) smooth multiplicative fields ``1 + a * f`` with ``a`` uniform in
    [0, ``amplitude``] per pattern and ``f`` a smooth random field of unit standard deviation."""
    coarse = torch.randn((n, 1, BLOTCH_GRID, BLOTCH_GRID), generator=generator)
    field = F.interpolate(coarse, size=shape, mode="bicubic", align_corners=False)[:, 0]
    field = field / field.std(dim=(-2, -1), keepdim=True).clamp_min(1e-6)
    scale = torch.rand((n, 1, 1), generator=generator) * amplitude
    return (1.0 + scale * field).clamp_min(0.05)


def fixed_pattern(
    n: int, shape: tuple[int, int], amplitude: float, generator: torch.Generator
) -> torch.Tensor:
    """(n, H, W) pixel gains ``1 + a * w``, ``w`` white unit noise and ``a`` uniform in [0,
    ``amplitude``] per pattern: the camera's and phosphor's fixed-pattern texture, which only a
    recorded static background removes (a file without one keeps it)."""
    texture = torch.randn((n, *shape), generator=generator)
    scale = torch.rand((n, 1, 1), generator=generator) * amplitude
    return (1.0 + scale * texture).clamp_min(0.05)


def as_recorded(
    patterns: torch.Tensor,
    band_contrast: tuple[float, float],
    dose_e_per_px: tuple[float, float],
    background_amplitude: float,
    generator: torch.Generator,
    fixed_pattern_amplitude: float = 0.0,
) -> torch.Tensor:
    """(N, H, W) counts of simulated ``patterns`` as a camera records them.

    Each pattern is standardised and scaled to ``1 + c * z / 3`` (bands within +-``c`` of a
    flat background, ``c`` drawn uniformly from ``band_contrast``), multiplied by a residual
    background (:func:`residual_background`) and, when ``fixed_pattern_amplitude`` > 0, by a
    fixed-pattern texture (:func:`fixed_pattern`), and Poisson-sampled at a mean of ``dose``
    electrons per pixel (drawn log-uniformly from ``dose_e_per_px``). CPU generator; the result
    is on the patterns' device.
    """
    n, height, width = patterns.shape
    data = patterns.detach().to("cpu", torch.float32)
    mean = data.mean(dim=(-2, -1), keepdim=True)
    spread = data.std(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    low, high = band_contrast
    contrast = (low + torch.rand((n, 1, 1), generator=generator) * (high - low)).clamp_min(0)
    signal = (1.0 + contrast * (data - mean) / spread / 3.0).clamp_min(0.0)
    signal = signal * residual_background(n, (height, width), background_amplitude, generator)
    if fixed_pattern_amplitude > 0:
        signal = signal * fixed_pattern(n, (height, width), fixed_pattern_amplitude, generator)
    dose = _log_uniform(n, dose_e_per_px, generator).view(n, 1, 1)
    counts = torch.poisson(signal * dose, generator=generator)
    return counts.to(patterns.device)
