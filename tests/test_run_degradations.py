"""A run's detector and degradations: the pattern-centre range, a lab detector, and the
named degradation sets, from the run config down to the stream's augmentation."""

from __future__ import annotations

import pytest


def test_a_pc_range_trains_across_fields_of_view():
    """``pc_range`` draws each pattern's centre uniformly within the ranges (every field of
    view real microscopes use); it reaches the stream and the stored reading settings."""
    import torch

    from train.patterns.augment import AugmentConfig, AugmentError, jittered_pcs
    from train.patterns.reading import PatternReading
    from train.supervised import SupervisedConfig

    ranges = ((0.4, 0.6), (0.2, 0.5), (0.5, 1.8))
    pcs = jittered_pcs((0.5, 0.5, 1.7), 2000, 0.0, torch.Generator().manual_seed(0), ranges)
    for axis, (low, high) in enumerate(ranges):
        assert low <= pcs[:, axis].min() < low + 0.02 and high - 0.02 < pcs[:, axis].max() <= high
    config = SupervisedConfig(image_size=32, detector_shape=(32, 32), pc_range=ranges)
    assert config.stream_config(True).augment.pc_range == ranges
    assert config.stream_config(False).augment is None
    stored = PatternReading.from_dict(config.reading([225, 229]).to_dict())
    assert stored.augment.pc_range == ranges
    with pytest.raises(AugmentError, match="PCz must be > 0"):
        AugmentConfig(pc_range=((0.4, 0.6), (0.2, 0.5), (0.0, 1.0)))


def test_a_run_on_a_lab_detector_reads_and_degrades_as_configured():
    """``pc`` moves the run's detector (evaluation renders there and prediction re-projects onto
    it, so it is stored in the reading); ``degrade`` adds the camera degradations to training
    only; a PCz of zero is refused naming the field."""
    from train.errors import TrainingError
    from train.patterns.reading import PatternReading
    from train.run_config import LAB_DEGRADATIONS
    from train.supervised import SupervisedConfig

    paper = SupervisedConfig(image_size=32, detector_shape=(32, 32))
    lab = paper.refine(pc=(0.5, 0.3, 0.6), degrade=True)
    assert paper.detector().pc[2] > 1.7 and lab.detector().pc == (0.5, 0.3, 0.6)
    assert lab.stream_config(False).detector.pc == (0.5, 0.3, 0.6)
    assert lab.stream_config(False).augment is None
    stored = PatternReading.from_dict(lab.reading([225, 229]).to_dict())
    assert stored.detector.pc == (0.5, 0.3, 0.6)
    augment = lab.stream_config(True).augment
    for name, value in LAB_DEGRADATIONS.items():
        assert getattr(augment, name) == value
    assert paper.stream_config(True).augment.dose_e_per_px is None
    with pytest.raises(TrainingError, match=r"pc=\(0.5, 0.3, 0.0\)"):
        lab.refine(pc=(0.5, 0.3, 0.0)).check_positive((), "train")


def test_degradation_sets_are_named_and_a_bad_name_is_refused():
    """``degrade`` names a set: ``True`` is ``lab``; ``lab-dim`` reaches lower signal-to-noise
    (weaker bands, fewer electrons, more blur); an unknown name is one line naming the field."""
    from train.errors import TrainingError
    from train.run_config import DIM_DEGRADATIONS, LAB_DEGRADATIONS
    from train.supervised import SupervisedConfig

    base = SupervisedConfig(image_size=32, detector_shape=(32, 32))
    as_true = base.refine(degrade=True).stream_config(True).augment
    dim = base.refine(degrade="lab-dim").stream_config(True).augment
    assert as_true == base.refine(degrade="lab").stream_config(True).augment
    assert as_true.camera_dose_range == LAB_DEGRADATIONS["camera_dose_range"]
    assert dim.camera_dose_range == DIM_DEGRADATIONS["camera_dose_range"]
    assert dim.camera_dose_range[0] < as_true.camera_dose_range[0]
    assert dim.band_contrast_range[0] < as_true.band_contrast_range[0]
    assert dim.blur_sigma_px[1] > as_true.blur_sigma_px[1]
    with pytest.raises(TrainingError, match=r"degrade='dim': true, false or one of lab, lab-dim"):
        base.refine(degrade="dim").check_positive((), "train")
