"""The grainy camera texture of the ``lab-camera`` degradations (``fixed_pattern_grain_px``):
real cameras' fixed-pattern texture has grains of a pixel or two, not white pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from train.patterns.augment import AugmentConfig, AugmentError
from train.patterns.camera import fixed_pattern


def lag1(gains: torch.Tensor) -> np.ndarray:
    """Per-pattern correlation of horizontally neighbouring pixels of (n, H, W) gains."""
    texture = (gains - gains.mean(dim=(-2, -1), keepdim=True)).numpy()
    a, b = texture[:, :, 1:], texture[:, :, :-1]
    return (a * b).sum(axis=(1, 2)) / np.sqrt((a * a).sum(axis=(1, 2)) * (b * b).sum(axis=(1, 2)))


def test_grains_correlate_neighbours_up_to_the_real_camera_s_and_keep_the_amplitude():
    """With grains up to 1.2 px the neighbour correlation spans white (~0) to beyond the Ni
    camera's 0.52; the per-pattern spread still stays within the amplitude."""
    gains = fixed_pattern(400, (48, 48), 0.08, torch.Generator().manual_seed(3), grain_px=1.2)
    correlations = lag1(gains)
    assert correlations.min() < 0.15 and correlations.max() > 0.75
    assert 0.3 < np.median(correlations) < 0.7
    spread = gains.std(dim=(-2, -1))
    assert float(spread.max()) < 0.085 and float(spread.median()) > 0.02
    assert abs(float(gains.mean()) - 1) < 0.005


def test_without_grains_the_texture_and_its_random_stream_are_unchanged():
    """grain_px = 0 draws exactly what the white texture always drew, so models trained on the
    earlier sets (the shipped ones) rebuild bit for bit."""
    white = fixed_pattern(8, (16, 16), 0.05, torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(5)
    noise = torch.randn((8, 16, 16), generator=gen)
    scale = torch.rand((8, 1, 1), generator=gen) * 0.05
    assert torch.equal(white, (1.0 + scale * noise).clamp_min(0.05))
    grainy = fixed_pattern(8, (16, 16), 0.05, torch.Generator().manual_seed(5), grain_px=1.0)
    assert not torch.equal(white, grainy)


def test_the_lab_camera_set_reaches_the_stream_and_a_negative_grain_is_refused():
    from train.supervised import SupervisedConfig

    config = SupervisedConfig(image_size=32, detector_shape=(32, 32), degrade="lab-camera")
    augment = config.stream_config(True).augment
    assert augment.fixed_pattern_grain_px == 1.2
    assert augment.falloff_tan == (1.2, 1.6) and augment.fixed_pattern_noise == 0.08
    with pytest.raises(AugmentError, match=r"fixed_pattern_grain_px=-1.0: must be >= 0"):
        AugmentConfig(fixed_pattern_grain_px=-1.0)
