"""A simulated pattern as a camera records it: weak bands on a bright, uneven background.

Simulated Kikuchi patterns are all signal; a real one is a few per cent of band contrast on the
backscatter background, with what the static background correction leaves of it (smooth
blotches) and shot noise of the counts. After the dynamic background correction and
normalisation that a run applies, a real pattern is therefore far noisier than a simulation;
training on this degradation closes most of that gap.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from train.patterns.blur import gaussian_blur_each

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
    n: int,
    shape: tuple[int, int],
    amplitude: float,
    generator: torch.Generator,
    grain_px: float = 0.0,
) -> torch.Tensor:
    """(n, H, W) pixel gains ``1 + a * w``, ``a`` uniform in [0, ``amplitude``] per pattern: the
    camera's and phosphor's fixed-pattern texture, which only a recorded static background
    removes (a file without one keeps it).

    ``w`` is unit noise: white, or with ``grain_px`` > 0 blurred by a Gaussian whose sigma is
    drawn uniformly in [0, ``grain_px``] pixels per pattern and rescaled to unit deviation. A
    real camera's texture is grainy, not white (kikuchipy's Ni background: lag-1
    autocorrelation 0.52, a sigma of ~0.6 px, since white noise blurred by sigma s has lag-1
    correlation ``exp(-1 / (4 s^2))``); grains of a pixel or two look like fine bands.
    """
    texture = torch.randn((n, *shape), generator=generator)
    if grain_px > 0:
        sigmas = torch.rand(n, generator=generator) * grain_px
        texture = gaussian_blur_each(texture, sigmas)
        texture = texture / texture.std(dim=(-2, -1), keepdim=True).clamp_min(1e-6)
    scale = torch.rand((n, 1, 1), generator=generator) * amplitude
    return (1.0 + scale * texture).clamp_min(0.05)


def tan_from_centre(pcs: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    """(n, H, W) tangent of each pixel's angle from its pattern's centre: distance from the
    centre over the detector distance, for (n, 3) Bruker pattern centres (PCx, PCy as fractions
    of width and height, PCz of height)."""
    height, width = shape
    centres = torch.as_tensor(np.asarray(pcs, dtype=np.float32))
    y = torch.arange(height, dtype=torch.float32).view(1, -1, 1) + 0.5
    x = torch.arange(width, dtype=torch.float32).view(1, 1, -1) + 0.5
    dx = x - centres[:, 0].view(-1, 1, 1) * width
    dy = y - centres[:, 1].view(-1, 1, 1) * height
    return torch.hypot(dx, dy) / (centres[:, 2].view(-1, 1, 1) * height).clamp_min(1e-6)


def lorentzian(tan: torch.Tensor, scale: float) -> torch.Tensor:
    """``1 / (1 + (tan / scale)^2)``: 1 at the pattern centre, 1/2 at ``tan = scale``."""
    return 1.0 / (1.0 + (tan / scale) ** 2)


def as_recorded(
    patterns: torch.Tensor,
    band_contrast: tuple[float, float],
    dose_e_per_px: tuple[float, float],
    background_amplitude: float,
    generator: torch.Generator,
    fixed_pattern_amplitude: float = 0.0,
    pcs: np.ndarray | None = None,
    falloff_tan: tuple[float, float] | None = None,
    fixed_pattern_grain_px: float = 0.0,
) -> torch.Tensor:
    """(N, H, W) counts of simulated ``patterns`` as a camera records them.

    Each pattern is standardised and scaled to ``1 + c * z / 3`` (bands within +-``c`` of a
    flat background, ``c`` drawn uniformly from ``band_contrast``), multiplied by a residual
    background (:func:`residual_background`) and, when ``fixed_pattern_amplitude`` > 0, by a
    fixed-pattern texture (:func:`fixed_pattern`, grains up to ``fixed_pattern_grain_px``),
    and Poisson-sampled at a mean of ``dose`` electrons per pixel (drawn log-uniformly from
    ``dose_e_per_px``). CPU generator; the result is on the patterns' device.

    ``falloff_tan`` = (contrast, intensity) scales, with each pattern's centre ``pcs``: the
    band contrast falls as :func:`lorentzian` of the angle from the centre at the first scale
    and the backscatter intensity (the dose) at the second, and the counts are flat-fielded by
    that intensity as a recorded static background would be, so the pattern's outer parts are
    weaker and noisier (kikuchipy's Ni scan: contrast scale ~1.2, intensity ~1.6; see
    ``train.run_config.FALLOFF_DEGRADATIONS``).
    """
    n, height, width = patterns.shape
    data = patterns.detach().to("cpu", torch.float32)
    mean = data.mean(dim=(-2, -1), keepdim=True)
    spread = data.std(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    low, high = band_contrast
    contrast = (low + torch.rand((n, 1, 1), generator=generator) * (high - low)).clamp_min(0)
    bands = (data - mean) / spread / 3.0
    intensity = None
    if falloff_tan is not None and pcs is not None:
        tan = tan_from_centre(pcs, (height, width))
        bands = bands * lorentzian(tan, falloff_tan[0])
        intensity = lorentzian(tan, falloff_tan[1])
    signal = (1.0 + contrast * bands).clamp_min(0.0) * (1.0 if intensity is None else intensity)
    signal = signal * residual_background(n, (height, width), background_amplitude, generator)
    if fixed_pattern_amplitude > 0:
        gains = fixed_pattern(
            n, (height, width), fixed_pattern_amplitude, generator, fixed_pattern_grain_px
        )
        signal = signal * gains
    dose = _log_uniform(n, dose_e_per_px, generator).view(n, 1, 1)
    counts = torch.poisson(signal * dose, generator=generator)
    if intensity is not None:
        counts = counts / intensity
    return counts.to(patterns.device)
