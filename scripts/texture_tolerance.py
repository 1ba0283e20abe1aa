"""How much camera texture a model's calls on real patterns survive, and how much a file holds.

A camera's fixed-pattern texture (pixel gains, phosphor grain, dust) is in every raw pattern;
only a recorded static background divides it out. For a file with one (kikuchipy's h5ebsd Ni
scan) the script measures that texture (the background over its own 2 px blur), the bands'
strength in the flat-fielded patterns, and the model's calls when the patterns are flat-fielded
by the recorded background and then given back a texture of known amplitude: white, correlated
like a camera's (a 0.8 px blur of white noise), or the file's own. Where the calls turn
"uncertain" at a texture weaker than the camera's, no flat field short of the recorded one can
rescue a file that lacks it (EDAX's copy of the same scan)::

    .venv/bin/python scripts/texture_tolerance.py --model cubic-lab
    .venv/bin/python scripts/texture_tolerance.py --model cubic-lab --file scan.h5

The file needs a static background (h5ebsd, NORDIF); default: kikuchipy's h5ebsd Ni scan.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AMPLITUDES = (0.01, 0.02, 0.03, 0.05)
"""Relative rms of the texture put back into the flat-fielded patterns."""

CAMERA_GRAIN_PX = 0.8
"""Blur (px) of white noise giving a lag-1 autocorrelation near the Ni camera's (0.56)."""


def texture_of(background: np.ndarray, on_screen: np.ndarray) -> tuple[float, float]:
    """(relative rms, lag-1 autocorrelation along rows) of a static background's texture: the
    background over its 2 px blur, on the screen."""
    from scipy.ndimage import gaussian_filter

    texture = np.log(background / gaussian_filter(background, 2.0))
    texture = np.where(on_screen, texture - texture[on_screen].mean(), 0.0)
    both = on_screen[:, 1:] & on_screen[:, :-1]
    lag1 = np.corrcoef(texture[:, 1:][both], texture[:, :-1][both])[0, 1]
    return float(texture[on_screen].std()), float(lag1)


def band_rms(flat_fielded: np.ndarray, on_screen: np.ndarray) -> float:
    """Relative rms of flat-fielded (N, H, W) patterns over their 4 px blur, on the screen:
    the bands' strength, with the shot noise."""
    from scipy.ndimage import gaussian_filter

    bands = flat_fielded / gaussian_filter(flat_fielded, (0, 4.0, 4.0)) - 1
    return float(bands[:, on_screen].std())


def texture_field(
    shape: tuple[int, int], amplitude: float, grain_px: float, seed: int
) -> np.ndarray:
    """A multiplicative texture ``1 + amplitude * w``, ``w`` unit white noise blurred by
    ``grain_px`` (0: white) and rescaled to unit standard deviation."""
    from scipy.ndimage import gaussian_filter

    noise = np.random.default_rng(seed).standard_normal(shape)
    if grain_px > 0:
        noise = gaussian_filter(noise, grain_px)
    return 1.0 + amplitude * noise / noise.std()


@dataclass
class ToleranceRow:
    """The model's calls on the patterns given one texture."""

    texture: str
    """``none``, ``white``, ``camera-like`` or ``the file's own`` (the latter applied twice)."""
    amplitude: float
    """Relative rms of the added texture (0 for none)."""
    calls: dict[str, int]
    """Count of patterns per call (a class symbol, or ``uncertain``)."""
    mean_probability: dict[str, float]
    """Mean calibrated probability per class."""


@dataclass
class TextureTolerance:
    """What a file's camera adds, and what the model survives."""

    texture_rms: float
    """Relative rms of the file's fixed-pattern texture (its background over its blur)."""
    texture_lag1: float
    """Lag-1 autocorrelation of that texture (0: white, per-pixel)."""
    band_rms: float
    """Relative rms of the flat-fielded patterns' fine structure (bands and shot noise)."""
    rows: list[ToleranceRow]


def measure(model: str, path: str | Path, seed: int = 0) -> TextureTolerance:
    """Calls of ``model`` on the file at ``path`` flat-fielded by its own static background,
    then with each added texture (:data:`AMPLITUDES`, white and camera-like)."""
    from train.patterns.experimental import image_quality, read_patterns
    from train.patterns.network_input import network_input, screen_mask
    from train.patterns.scan_geometry import read_scan_geometry
    from train.runs.calibration import verdicts
    from train.runs.inference import load_model
    from train.targets import class_symbol

    loaded = load_model(model)
    raw = read_patterns(path).patterns.astype(np.float64)
    raw = raw.reshape(-1, *raw.shape[-2:])
    geometry = read_scan_geometry(path, raw.shape[-2:])
    if geometry.static_background is None:
        raise SystemExit(f"{path}: the file holds no static background to measure against")
    background = geometry.static_background.astype(np.float64)
    on_screen = screen_mask(raw)
    symbols = np.array([class_symbol(loaded.reading.label, c) for c in loaded.classes], dtype=str)

    def row(texture: str, amplitude: float, gains: np.ndarray) -> ToleranceRow:
        recorded = (raw * gains).astype(np.float32)
        prepared = network_input(recorded, geometry, loaded.reading)
        probabilities = loaded.probabilities(prepared).numpy()
        verdict = verdicts(probabilities, loaded.threshold, image_quality(recorded))
        confident = np.array(verdict) == "confident"
        calls = np.where(confident, symbols[probabilities.argmax(1)], "uncertain")
        names, counts = np.unique(calls, return_counts=True)
        means = probabilities.mean(0)
        return ToleranceRow(
            texture, amplitude, {str(n): int(c) for n, c in zip(names, counts, strict=True)},
            {str(s): round(float(p), 3) for s, p in zip(symbols, means, strict=True)},
        )  # fmt: skip

    rms, lag1 = texture_of(background, on_screen)
    rows = [row("none", 0.0, np.ones(raw.shape[-2:]))]
    for amplitude in AMPLITUDES:
        for name, grain in (("white", 0.0), ("camera-like", CAMERA_GRAIN_PX)):
            rows.append(row(name, amplitude, texture_field(raw.shape[-2:], amplitude, grain, seed)))
    from scipy.ndimage import gaussian_filter

    rows.append(row("the file's own", rms, background / gaussian_filter(background, 2.0)))
    return TextureTolerance(rms, lag1, band_rms(raw / background, on_screen), rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cubic-lab", help="shipped name or package folder")
    parser.add_argument("--file", default=None, help="a scan with a static background")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from train.patterns.sample_scans import kikuchipy_ni_files

    path = args.file or kikuchipy_ni_files()["h5ebsd"]
    result = measure(args.model, path, args.seed)
    print(f"{path}")
    print(
        f"camera texture: {result.texture_rms:.1%} rms, lag-1 autocorrelation "
        f"{result.texture_lag1:.2f}; flat-fielded bands and shot noise: {result.band_rms:.1%} rms"
    )
    for row in result.rows:
        calls = ", ".join(f"{name} {count}" for name, count in sorted(row.calls.items()))
        print(f"{row.texture:>15} {row.amplitude:5.1%}: {calls}  mean {row.mean_probability}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
