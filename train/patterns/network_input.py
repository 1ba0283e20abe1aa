"""A recorded pattern made into a run's network input, the way the run was trained.

Order: the file's static background (flat field), pixels outside the phosphor screen found,
then the geometry: re-projected onto the run's detector when the recording geometry is
known (exact: both are gnomonic views from the beam spot), else the largest square around the
frame centre (never a stretch); then the run's pre-processing (dynamic background,
normalisation) at the run's input size. Pixels the network should not trust (outside the
screen or outside the recorded field) are set to the pattern's mean after normalisation.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch.nn import functional as F

from train.patterns.detector import Detector
from train.patterns.preprocess import preprocess
from train.patterns.reading import PatternReading
from train.patterns.reprojection import centre_square, covered_pixels, reproject
from train.patterns.scan_geometry import ScanGeometry

CENTRE_GRID = 5
"""Pattern centres tried per axis of a run's ``pc_range`` for a recording outside it."""

COVERAGE_SIDE = 24
"""Side (px) of the coarse view on which the recorded screen's coverage is counted."""

SCREEN_THRESHOLD = 0.15
"""Pixels darker than this fraction of the scan's bright level lie outside the screen."""


def screen_mask(patterns: np.ndarray, background: np.ndarray | None = None) -> np.ndarray:
    """bool (H, W): pixels on the phosphor screen (dark corners and a round screen's edge are
    off it), from the static background when there is one, else from the scan's mean."""
    level = background if background is not None else np.asarray(patterns).mean(0)
    bright = float(np.percentile(level, 99))
    if bright <= 0:
        return np.ones(level.shape, dtype=bool)
    return level > SCREEN_THRESHOLD * bright


def flat_field(patterns: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Divide by the static background (rescaled to its mean), where it has signal."""
    safe = np.maximum(background, 1e-3 * float(background.max()))
    return patterns / safe * float(background.mean())


def network_input(
    patterns: np.ndarray, geometry: ScanGeometry, reading: PatternReading
) -> torch.Tensor:
    """float32 (N, 1, S, S) network input of raw (N, H, W) patterns; S is the run's input size.

    Parameters
    ----------
    patterns
        Raw intensities as recorded.
    geometry
        What the file (or the user) says about the recording (``read_scan_geometry``).
    reading
        How the run reads a pattern: its detector, input size and pre-processing.
    """
    data = np.asarray(patterns, dtype=np.float32)
    if geometry.static_background is not None:
        data = flat_field(data, geometry.static_background)
    on_screen = screen_mask(data, geometry.static_background)
    size = int(reading.image_size)
    if geometry.detector is not None:
        fill = data[:, on_screen].mean() if on_screen.any() else 0.0
        data = np.where(on_screen, data, fill)
    # the screen mask travels as one more pattern, so it is moved exactly as the patterns are
    stacked = np.concatenate([data, on_screen[None].astype(np.float32)])
    if geometry.detector is not None:
        target = target_detector(geometry.detector, reading)
        moved, covered = reproject(stacked, geometry.detector, target)
    else:
        moved, covered = _resized(centre_square(stacked), size), True
    data, valid = moved[:-1], covered & (moved[-1] > 0.5)
    steps = replace(reading.preprocess, static_background="none")
    prepared = preprocess(data, steps)
    if not valid.all():
        means = np.array([p[valid].mean() if valid.any() else 0.0 for p in prepared])
        prepared[:, ~valid] = means[:, None]
    return torch.from_numpy(np.ascontiguousarray(prepared, dtype=np.float32))[:, None]


def target_detector(source: Detector, reading: PatternReading) -> Detector:
    """The square detector a recording on ``source`` is re-projected onto for this run.

    Detector and sample tilts are the recording's: under uniformly random crystal orientations
    they do not change what a pattern can look like, and keeping them keeps the view on the
    recorded screen. The pattern centre is that of the recording's central square when the run
    was trained on it (inside its ``pc_range``): the pattern is then only resampled. Otherwise it
    is the trained centre (a grid over ``pc_range``, else the run's one detector) whose view the
    recorded screen covers best, the nearest one among equals.
    """
    rows, cols = source.shape
    side = min(rows, cols)
    pcx, pcy, pcz = source.pc
    square = np.array(
        [(pcx * cols - (cols - side) / 2) / side, (pcy * rows - (rows - side) / 2) / side,
         pcz * rows / side]
    )  # fmt: skip
    size = int(reading.image_size)
    view = reading.detector.with_shape((size, size)).refine(
        tilt_deg=source.tilt_deg,
        sample_tilt_deg=source.sample_tilt_deg,
        azimuthal_deg=source.azimuthal_deg,
        twist_deg=source.twist_deg,
    )
    augment = reading.augment
    if augment is None or augment.pc_range is None:
        return view
    low, high = np.asarray(augment.pc_range, dtype=np.float64).T
    if np.all((square >= low) & (square <= high)):
        return view.refine(pc=tuple(float(v) for v in square))
    axes = [np.linspace(lo, hi, CENTRE_GRID) for lo, hi in zip(low, high, strict=True)]
    candidates = [np.clip(square, low, high), *np.stack(np.meshgrid(*axes), -1).reshape(-1, 3)]
    coarse = view.with_shape((COVERAGE_SIDE, COVERAGE_SIDE))

    def score(pc: np.ndarray) -> tuple[float, float]:
        seen = covered_pixels(source, coarse.refine(pc=tuple(float(v) for v in pc))).mean()
        return round(float(seen), 2), -float(np.linalg.norm(pc - square))

    best = max(candidates, key=score)
    return view.refine(pc=tuple(float(v) for v in best))


def _resized(patterns: np.ndarray, size: int) -> np.ndarray:
    """(N, h, w) -> (N, size, size), bilinear with antialiasing (as the stream's renders)."""
    tensor = torch.from_numpy(np.ascontiguousarray(patterns, dtype=np.float32))[:, None]
    if tensor.shape[-2:] != (size, size):
        tensor = F.interpolate(tensor, size=(size, size), mode="bilinear", antialias=True)
    return tensor[:, 0].numpy()
