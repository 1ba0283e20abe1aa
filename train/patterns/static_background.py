"""A static background for files that carry none: a smooth surface fitted to the scan's mean.

A raw pattern is a few per cent of band contrast on a backscatter background that falls from the
screen's centre to its edges (vignetting). A file with its static background (h5ebsd, NORDIF)
is flat-fielded by it; without one (kikuchipy's EDAX copies of the Ni scan), the dynamic
background removal (a blur of ~1/8 of the width) cannot follow the steep fall-off near the
edges, and the network sees a dark frame around weak bands. The scan's mean is no substitute:
on a small scan of one grain it holds the bands themselves, and dividing by it erases them.

What is estimated instead is the smooth part only: a low-order polynomial in the two detector
coordinates fitted to the logarithm of the scan's mean pattern on the phosphor screen. On
kikuchipy's Ni scan, whose h5ebsd file carries the true background, the fit departs from that
background's 2 px blur by 3.3 % (degree 2), 2.4 % (degree 4), 2.2 % (degree 6) rms; degree 4 is
where the gain levels off (``SMOOTH_BACKGROUND_DEGREE``). The camera's per-pixel texture and
dust on the screen, which only a recorded background holds, stay in the pattern (the lab
recipes train with such a texture, ``fixed_pattern_noise``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from train.patterns.network_input import screen_mask
from train.patterns.scan_geometry import ScanGeometry

SMOOTH_BACKGROUND_DEGREE = 4
"""Total degree of the fitted polynomial (15 terms): flexible enough for a screen's vignetting,
too stiff for a Kikuchi band (a few pixels wide)."""


def smooth_background(patterns: np.ndarray, degree: int = SMOOTH_BACKGROUND_DEGREE) -> np.ndarray:
    """float32 (H, W) smooth static background of raw (N, H, W) or (H, W) patterns.

    On the screen: ``exp`` of a total-degree ``degree`` polynomial in x and y (scaled to
    [-1, 1]) least-squares fitted to ``log`` of the mean pattern; off the screen: the mean
    itself (dark corners stay dark, so :func:`screen_mask` still finds them).
    """
    data = np.asarray(patterns, dtype=np.float64)
    mean = data.mean(0) if data.ndim == 3 else data
    on_screen = screen_mask(mean[None])
    if not (mean[on_screen] > 0).all():  # no signal to fit a logarithm to
        return mean.astype(np.float32)
    rows, cols = mean.shape
    y, x = np.mgrid[0:rows, 0:cols]
    u, v = 2 * x / max(cols - 1, 1) - 1, 2 * y / max(rows - 1, 1) - 1
    terms = np.stack([u**i * v**j for i in range(degree + 1) for j in range(degree + 1 - i)])
    design = terms[:, on_screen].T
    if design.shape[0] < 2 * design.shape[1]:  # too little screen to fit a surface
        return mean.astype(np.float32)
    coefficients, *_ = np.linalg.lstsq(design, np.log(mean[on_screen]), rcond=None)
    fitted = np.exp(np.tensordot(coefficients, terms, axes=1))
    return np.where(on_screen, fitted, mean).astype(np.float32)


def with_static_background(geometry: ScanGeometry, patterns: np.ndarray) -> ScanGeometry:
    """``geometry`` itself when it carries a static background, else with the smooth estimate of
    ``patterns`` (:func:`smooth_background`) and a note saying so."""
    if geometry.static_background is not None:
        return geometry
    note = f"{geometry.note}; no static background in the file: a smooth fit to the scan's mean"
    return replace(geometry, static_background=smooth_background(patterns), note=note)
