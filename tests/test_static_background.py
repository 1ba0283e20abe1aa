"""The static background estimated for files that carry none (``train.patterns.static_background``):
it removes the screen's vignetting, keeps the bands a one-grain scan shares, and on kikuchipy's
real Ni scan it matches the background the h5ebsd file records."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from train.patterns.network_input import network_input, screen_mask
from train.patterns.sample_scans import kikuchipy_ni_files
from train.patterns.scan_geometry import ScanGeometry, read_scan_geometry
from train.patterns.static_background import smooth_background, with_static_background

NI_FILES = kikuchipy_ni_files()
SIDE = 60


def _rms_log_ratio(estimate: np.ndarray, reference: np.ndarray, where: np.ndarray) -> float:
    """Root-mean-square of log(estimate / reference) on ``where``, after matching the scale."""
    ratio = np.log(estimate[where] / reference[where])
    return float(np.sqrt(np.mean((ratio - ratio.mean()) ** 2)))


def _one_grain_scan(n: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw patterns of one grain: 4 % bands on an off-centre vignetting with dark corners, the
    bands the same in every pattern; returns (patterns, vignetting, bands)."""
    y, x = np.mgrid[0:SIDE, 0:SIDE] / (SIDE - 1)
    vignetting = 200 * np.exp(-(((x - 0.45) / 0.45) ** 2 + ((y - 0.35) / 0.5) ** 2))
    vignetting[np.hypot(x - 0.5, y - 0.5) > 0.68] = 3.0  # off the round screen
    bands = 0.04 * (np.cos(40 * (x + 0.3 * y)) + np.cos(33 * (y - 0.6 * x)) + np.cos(47 * x * y))
    rng = np.random.default_rng(0)
    patterns = rng.poisson(vignetting * (1 + bands), size=(n, SIDE, SIDE)).astype(np.float32)
    return patterns, vignetting, bands


def test_the_estimate_follows_the_vignetting_not_the_bands():
    patterns, vignetting, bands = _one_grain_scan()
    estimate = smooth_background(patterns)
    on = screen_mask(patterns)
    assert _rms_log_ratio(estimate, vignetting, on) < 0.02
    mean = patterns.mean(0)
    kept = np.corrcoef((mean / estimate)[on], bands[on])[0, 1]
    ideal = np.corrcoef((mean / vignetting)[on], bands[on])[0, 1]  # shot noise limits both
    assert kept > 0.95 * ideal, f"bands after the estimate r = {kept:.2f}, ideal {ideal:.2f}"
    absorbed = np.corrcoef((estimate / vignetting)[on], bands[on])[0, 1]
    assert abs(absorbed) < 0.2, f"the estimate took up the bands: r = {absorbed:.2f}"


def test_off_screen_pixels_keep_their_darkness():
    patterns, vignetting, _ = _one_grain_scan()
    estimate = smooth_background(patterns)
    off = vignetting < 10
    assert estimate[off].max() < 0.1 * estimate.max()
    assert not screen_mask(patterns, estimate)[off].any()


def test_a_recorded_background_is_kept_and_a_missing_one_is_stated():
    patterns, _, _ = _one_grain_scan(2)
    recorded = ScanGeometry(static_background=np.ones((SIDE, SIDE), np.float32), note="file")
    assert with_static_background(recorded, patterns) is recorded
    estimated = with_static_background(ScanGeometry(note="no detector"), patterns)
    assert estimated.static_background.shape == (SIDE, SIDE)
    assert estimated.note == (
        "no detector; no static background in the file: a smooth fit to the scan's mean"
    )


def test_on_the_real_ni_scan_it_matches_the_recorded_background():
    """kikuchipy's h5ebsd Ni file records its static background: the estimate from the raw
    patterns alone matches its smooth part (2 px blur) to 2.4 % rms; the recorded background
    departs 2.2 % from its own blur (the camera's texture, which no estimate recovers)."""
    from train.patterns.experimental import read_patterns

    path = NI_FILES["h5ebsd"]
    raw = read_patterns(path).patterns
    recorded = read_scan_geometry(path, raw.shape[-2:]).static_background.astype(np.float64)
    on = screen_mask(raw)
    assert _rms_log_ratio(smooth_background(raw), gaussian_filter(recorded, 2), on) < 0.03
    assert _rms_log_ratio(smooth_background(raw, degree=1), recorded, on) > 0.2


def test_a_file_without_background_no_longer_gets_a_dark_frame():
    """EDAX's copy of the Ni scan has no background: without the estimate the dynamic
    background cannot follow the vignetting's fall-off and the network input's 6 px border is
    ~0.9 standard deviations dark; with it, the border is as bright as the rest."""
    from train.patterns.experimental import read_patterns

    path = NI_FILES["EDAX"]
    raw = read_patterns(path).patterns
    geometry = read_scan_geometry(path, raw.shape[-2:])
    assert geometry.static_background is None
    from train.runs.inference import load_model

    reading = load_model("cubic-lab").reading  # 64 px input, kikuchipy's dynamic background
    border = np.zeros((64, 64), dtype=bool)
    border[:6], border[-6:], border[:, :6], border[:, -6:] = True, True, True, True
    before = network_input(raw, geometry, reading).numpy()[:, 0]
    after = network_input(raw, with_static_background(geometry, raw), reading).numpy()[:, 0]
    assert before[:, border].mean() < -0.5
    assert abs(after[:, border].mean()) < 0.2
