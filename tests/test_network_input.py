"""Reading a recorded pattern for a run: the re-projection target and the camera degradation.

Real projections of kikuchipy's Ni master (EMsoft, npx 50 here) on several detectors.
"""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest
import torch

from simulate.validation import emsoft_ni_master_file
from train.patterns.augment import AugmentConfig, AugmentError, degrade
from train.patterns.camera import as_recorded, fixed_pattern, residual_background
from train.patterns.detector import Detector
from train.patterns.network_input import target_detector
from train.patterns.orientations import sample_so3
from train.patterns.projection import project
from train.patterns.reprojection import reproject
from train.supervised import SupervisedConfig

LAB_RANGE = ((0.35, 0.65), (0.15, 0.45), (0.45, 0.8))


@pytest.fixture(scope="module")
def ni_master() -> torch.Tensor:
    with h5py.File(emsoft_ni_master_file()) as f:
        north = f["EMData/EBSDmaster/mLPNH"][0, 0].astype(np.float32)
        south = f["EMData/EBSDmaster/mLPSH"][0, 0].astype(np.float32)
    return torch.from_numpy(np.stack([north, south])[None, :, ::4, ::4].copy())


def _render(master: torch.Tensor, detector: Detector, n: int = 6, seed: int = 3) -> np.ndarray:
    quats = sample_so3(n, seed)
    return project(master, np.zeros(n, dtype=int), quats, detector, device="cpu").numpy()


def _reading(pc_range=LAB_RANGE):
    config = SupervisedConfig(image_size=48, detector_shape=(56, 56), pc=(0.5, 0.3, 0.6))
    return config.refine(pc_range=pc_range).reading([225, 229])


def test_a_recording_inside_the_trained_range_is_only_resampled(ni_master):
    """A square recording whose geometry the run was trained on keeps its own pattern centre
    and tilts: the re-projected patterns cover the whole input and equal a direct rendering."""
    source = Detector(shape=(60, 60), pc=(0.425, 0.213, 0.501), tilt_deg=0.0)
    target = target_detector(source, _reading())
    assert target.shape == (48, 48) and np.allclose(target.pc, source.pc)
    assert (target.tilt_deg, target.sample_tilt_deg) == (0.0, 70.0)
    moved, covered = reproject(
        _render(ni_master, source.with_shape((240, 240))), source.with_shape((240, 240)), target
    )
    direct = _render(ni_master, target)
    assert covered.all()
    r = np.corrcoef(moved.ravel(), direct.ravel())[0, 1]
    assert r > 0.98, r


def test_a_recording_outside_the_range_moves_to_the_nearest_trained_centre(ni_master):
    """A 4:3 recording: inside the range, its central square's centre; outside, the trained
    centre whose view the screen covers best; a run trained on one detector gets that
    detector's centre; always with the recording's tilts."""
    source = Detector(shape=(60, 80), pc=(0.5, 0.6, 0.4), tilt_deg=10.0, sample_tilt_deg=65.0)
    target = target_detector(source, _reading())
    assert all(low <= v <= high for v, (low, high) in zip(target.pc, LAB_RANGE, strict=True))
    assert (target.tilt_deg, target.sample_tilt_deg) == (10.0, 65.0)
    off_centre = dataclasses.replace(source, pc=(0.45, 0.3, 0.6))
    assert np.isclose(target_detector(off_centre, _reading()).pc[0], (0.45 * 80 - 10) / 60)
    single = target_detector(source, _reading(pc_range=None))
    assert np.allclose(single.pc, (0.5, 0.3, 0.6)) and single.tilt_deg == 10.0
    moved, covered = reproject(_render(ni_master, source), source, target)
    clamped = target.refine(pc=(0.5, 0.45, 0.45))  # the nearest trained centre
    naive = _reading().detector.with_shape((48, 48))  # the run's detector as it was trained
    for other in (clamped, naive):
        assert covered.mean() >= reproject(_render(ni_master, source), source, other)[1].mean()
    assert covered.mean() > 0.9


def test_the_camera_records_weak_bands_on_a_background_with_shot_noise(ni_master):
    """Counts average the drawn dose; band contrast sets how much of the pattern survives the
    noise; the same seed gives the same record."""
    patterns = torch.from_numpy(_render(ni_master, Detector(shape=(40, 40), pc=(0.5, 0.3, 0.6))))

    def record(contrast, dose, seed=0, amplitude=0.0):
        gen = torch.Generator().manual_seed(seed)
        return as_recorded(patterns, (contrast, contrast), (dose, dose), amplitude, gen)

    clean, faint = record(0.4, 20_000), record(0.05, 200)
    assert abs(float(clean.mean()) / 20_000 - 1) < 0.01
    assert abs(float(faint.mean()) / 200 - 1) < 0.02
    r_clean = np.corrcoef(clean.numpy().ravel(), patterns.numpy().ravel())[0, 1]
    r_faint = np.corrcoef(faint.numpy().ravel(), patterns.numpy().ravel())[0, 1]
    assert r_clean > 0.95 and r_faint < 0.5 < r_clean
    assert torch.equal(record(0.1, 500, seed=4), record(0.1, 500, seed=4))
    fields = residual_background(64, (40, 40), 0.04, torch.Generator().manual_seed(1))
    assert float((fields - 1).abs().max()) < 0.04 * 5 and abs(float(fields.mean()) - 1) < 0.01


def test_the_fixed_pattern_texture_is_per_pixel_and_bounded_by_its_amplitude(ni_master):
    """A camera's pixel gains (what a file without its static background keeps): white, mean
    1, at most the amplitude per pattern; a recorded pattern with it departs more from its
    simulation than one without, at the same dose and seed."""
    gains = fixed_pattern(256, (40, 40), 0.08, torch.Generator().manual_seed(2))
    spread = gains.std(dim=(-2, -1))
    assert abs(float(gains.mean()) - 1) < 0.005 and float(spread.max()) < 0.085
    assert float(spread.min()) < 0.01 < float(spread.median())  # amplitudes drawn in [0, 0.08]
    neighbours = np.corrcoef(gains[:, :, 1:].ravel(), gains[:, :, :-1].ravel())[0, 1]
    assert abs(neighbours) < 0.05  # per pixel, no smooth structure
    patterns = torch.from_numpy(_render(ni_master, Detector(shape=(40, 40), pc=(0.5, 0.3, 0.6))))

    def r(amplitude):
        gen = torch.Generator().manual_seed(0)
        counts = as_recorded(patterns, (0.3, 0.3), (1e6, 1e6), 0.0, gen, amplitude)
        return np.corrcoef(counts.numpy().ravel(), patterns.numpy().ravel())[0, 1]

    assert r(0.3) < r(0.0) - 0.05
    with pytest.raises(AugmentError, match="fixed_pattern_noise"):
        AugmentConfig(band_contrast_range=(0.1, 0.2), fixed_pattern_noise=-0.1)


def test_degrade_applies_the_camera_record_and_refuses_a_bad_dose(ni_master):
    patterns = torch.from_numpy(_render(ni_master, Detector(shape=(40, 40), pc=(0.5, 0.3, 0.6))))
    cfg = AugmentConfig(band_contrast_range=(0.1, 0.1), camera_dose_range=(300.0, 300.0))
    out = degrade(patterns, cfg, torch.Generator().manual_seed(0))
    assert out.shape == patterns.shape and torch.equal(out, out.round())  # counts
    assert abs(float(out.mean()) / 300 - 1) < 0.02
    with pytest.raises(AugmentError, match="camera_dose_range"):
        AugmentConfig(band_contrast_range=(0.1, 0.2), camera_dose_range=(0.0, 10.0))
