"""scripts/real_pattern_probe.py: the grains it finds and the patterns it writes beside the real
Ni scan, built from a scan of two known patterns with noise (the kikuchipy indexing it runs
first is slow and is exercised by running the script, docs/RESULTS.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from real_pattern_probe import (  # noqa: E402
    BLENDS,
    DOSES,
    blurred,
    disorientations_deg,
    grain_averaged,
    grains_of,
    probe_variants,
    standardised,
    zoomed_about,
)

GRAIN = np.array([0, 1, 1, 0, 1, 1, 0, 1, 1])
"""Two grains on a 3 x 3 scan, as on kikuchipy's Ni scan: the first column and the rest."""


def two_grain_scan(noise: float, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A 3 x 3 scan of two 40 px band patterns (crossed bands on a gradient; the second grain's
    turned 90 deg) plus white noise; (scan, each pattern's clean pattern)."""
    y, x = np.mgrid[0:40, 0:40] / 40.0
    first = 1.0 + 0.4 * (np.abs(x - 0.5) < 0.08) + 0.3 * (np.abs(x + y - 1.0) < 0.06) + 0.2 * y
    clean = np.stack([first, first.T])[GRAIN].reshape(3, 3, 40, 40)
    rng = np.random.default_rng(seed)
    return clean + noise * rng.standard_normal(clean.shape), clean


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_grains_are_chains_of_close_orientations():
    angles = np.array([[0, 1, 30, 40], [1, 0, 4, 40], [30, 4, 0, 40], [40, 40, 40, 0.0]])
    assert grains_of(angles).tolist() == [0, 0, 0, 1]  # 0-1-2 linked through 1
    assert grains_of(angles, limit_deg=2).tolist() == [0, 0, 1, 2]


def test_disorientation_takes_the_crystal_symmetry_into_account():
    from orix.crystal_map import Phase
    from orix.quaternion import Rotation

    cubic = Phase(space_group=225).point_group
    turned = Rotation.from_axes_angles([[0, 0, 1]] * 3, np.deg2rad([0, 90, 93]))
    angles = disorientations_deg(turned, cubic)
    assert angles[0, 1] == pytest.approx(0, abs=1e-4)  # a 4-fold turn is no turn at all
    assert angles[0, 2] == pytest.approx(3, abs=1e-4)


def test_grain_averaging_takes_the_noise_away_and_keeps_each_grain_apart():
    scan, clean = two_grain_scan(noise=0.3)
    averaged = grain_averaged(scan, GRAIN)
    assert averaged.shape == scan.shape
    assert np.allclose(averaged[0, 0], averaged[2, 0])  # one pattern per grain
    assert not np.allclose(averaged[0, 0], averaged[0, 1])
    single = np.mean([correlation(p, c) for p, c in zip(scan, clean, strict=True)])
    for row, col in ((0, 0), (1, 2)):
        assert correlation(averaged[row, col], clean[row, col]) > single + 0.15


def test_blur_smooths_each_pattern_and_not_across_the_scan():
    scan, _ = two_grain_scan(noise=0.3)
    smooth = blurred(scan, 1.0)

    def lag1(images: np.ndarray) -> float:
        return correlation(images[..., 1:], images[..., :-1])

    assert lag1(smooth) > lag1(scan) + 0.3
    assert not np.allclose(smooth[0, 0], smooth[0, 1])  # patterns stay apart


def test_the_variants_cover_the_probe_rows_with_the_scan_s_shape():
    scan, clean = two_grain_scan(noise=0.5)
    rendered = clean + 0.0
    rows = probe_variants(standardised(scan), rendered, GRAIN, seed=0)
    expected = {"real, rewritten", "simulated", "simulated, blur 1 px"}
    expected |= {f"simulated, {dose} e/px" for dose in DOSES}
    expected |= {"real, grain averaged", "real, grain averaged, blur 1 px"}
    expected |= {f"{share:.0%} real" for share in BLENDS}
    assert expected <= set(rows)
    assert all(patterns.shape == scan.shape for patterns in rows.values())
    sim_z, real_z = standardised(rendered), standardised(scan)
    half = rows["50% real"]
    assert half == pytest.approx(0.5 * real_z + 0.5 * sim_z)
    averaged = rows["real, grain averaged"]
    assert correlation(averaged[1, 1], clean[1, 1]) > correlation(real_z[1, 1], clean[1, 1])


def test_the_noisy_rows_reach_the_correlation_they_are_named_after():
    scan, _ = two_grain_scan(noise=0.0)
    rows = probe_variants(standardised(scan), scan + 0.0, GRAIN, seed=3)
    for target in (0.7, 0.45):
        noisy = rows[f"simulated, white noise to r {target}"]
        assert correlation(noisy, standardised(scan)) == pytest.approx(target, abs=0.03)


def test_zoom_magnifies_about_the_centre_and_keeps_it_in_place():
    """A dot at the centre stays; a dot 5 px from it moves to 5 x factor px."""
    image = np.zeros((40, 40))
    image[10, 20] = image[10, 25] = 1.0
    zoomed = zoomed_about(image, (10.0, 20.0), 2.0)
    assert zoomed.shape == image.shape
    assert zoomed[10, 20] == pytest.approx(1.0)
    assert zoomed[10, 30] == pytest.approx(1.0) and zoomed[10, 25] < 0.6
    scan, clean = two_grain_scan(noise=0.5)
    rows = probe_variants(standardised(scan), clean + 0.0, GRAIN, seed=0, centre_rc=(20.0, 20.0))
    assert {"real, grain averaged, zoomed 1.15x", "real, grain averaged, zoomed 1.3x"} <= set(rows)
    assert not any("zoomed" in name for name in probe_variants(standardised(scan), clean, GRAIN, 0))
