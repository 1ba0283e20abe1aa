"""Re-project a pattern from the detector it was recorded on onto another detector.

Both detector views are gnomonic projections of the same sphere of directions from the beam
spot, so a pixel of the target detector maps to exactly one point of the source detector: take
its direction (``Detector.direction_cosines``, sample frame), rotate it into the source
detector's frame and intersect the source screen. Intensities are sampled bilinearly; target
pixels whose direction misses the source screen are marked invalid. This is how a pattern from
a lab microscope (pattern centre near 0.5-0.7, a wide field) is shown to a network trained on
another field of view without stretching it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from train.patterns.detector import Detector


def source_pixel_coordinates(
    source: Detector, directions: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where unit ``directions`` (K, 3, sample frame) hit the ``source`` screen.

    Returns
    -------
    rows, cols
        float64 (K,) pixel coordinates (0 is the centre of the first pixel).
    valid
        bool (K,): the direction points at the screen's plane from the beam spot.
    """
    in_detector = directions @ source.sample_to_detector().T
    pcx, pcy, pcz = source.pc
    ny, nx = source.shape
    depth = in_detector[:, 2]
    valid = depth > 1e-9
    safe = np.where(valid, depth, 1.0)
    x = in_detector[:, 0] / safe * pcz  # in units of the screen height
    y = in_detector[:, 1] / safe * pcz
    cols = (x + pcx * nx / ny) * ny - 0.5
    rows = (pcy - y) * ny - 0.5
    return rows, cols, valid


def covered_pixels(source: Detector, target: Detector) -> np.ndarray:
    """bool (h, w) with (h, w) = ``target.shape``: target pixels the ``source`` screen sees."""
    rows, cols, valid = source_pixel_coordinates(source, target.direction_cosines())
    ny, nx = source.shape
    inside = valid & (rows >= -0.5) & (rows <= ny - 0.5) & (cols >= -0.5) & (cols <= nx - 0.5)
    return inside.reshape(target.shape)


def reproject(
    patterns: np.ndarray, source: Detector, target: Detector
) -> tuple[np.ndarray, np.ndarray]:
    """Patterns recorded on ``source`` as they would appear on ``target``.

    Parameters
    ----------
    patterns
        float (N, H, W) with (H, W) = ``source.shape``.
    source, target
        The detectors (pattern centre, shape, tilts); pixel sizes do not matter, the PC does.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        float32 (N, h, w) with (h, w) = ``target.shape`` (invalid pixels hold the pattern's
        mean), and bool (h, w): which target pixels the source screen covers.
    """
    data = np.asarray(patterns, dtype=np.float32)
    if data.shape[-2:] != tuple(source.shape):
        raise ValueError(f"patterns of shape {data.shape[-2:]} are not the source detector's")
    rows, cols, valid = source_pixel_coordinates(source, target.direction_cosines())
    ny, nx = source.shape
    inside = valid & (rows >= -0.5) & (rows <= ny - 0.5) & (cols >= -0.5) & (cols <= nx - 0.5)
    grid = np.stack([(cols + 0.5) / nx * 2 - 1, (rows + 0.5) / ny * 2 - 1], axis=-1)
    grid = np.where(inside[:, None], grid, 0.0).reshape(1, *target.shape, 2)
    tensor = torch.from_numpy(np.ascontiguousarray(data)).reshape(-1, 1, ny, nx)
    sampled = F.grid_sample(
        tensor,
        torch.from_numpy(grid.astype(np.float32)).expand(len(tensor), -1, -1, -1),
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )[:, 0].numpy()
    mask = inside.reshape(target.shape)
    means = data.reshape(len(data), -1).mean(1)
    sampled[:, ~mask] = means[:, None]
    return sampled.astype(np.float32), mask


def centre_square(patterns: np.ndarray, centre: tuple[float, float] | None = None) -> np.ndarray:
    """The largest square of each (N, H, W) pattern around ``centre`` (row, col in pixels;
    default the frame centre), so a non-square pattern is cropped, never stretched."""
    data = np.asarray(patterns)
    height, width = data.shape[-2:]
    side = min(height, width)
    row, col = centre if centre is not None else ((height - 1) / 2, (width - 1) / 2)
    top = int(np.clip(round(row - (side - 1) / 2), 0, height - side))
    left = int(np.clip(round(col - (side - 1) / 2), 0, width - side))
    return data[..., top : top + side, left : left + side]
