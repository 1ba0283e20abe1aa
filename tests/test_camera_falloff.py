"""The camera's angular fall-off (``falloff_tan``, the ``lab-falloff`` degradations): band
contrast and backscatter intensity fall with the angle from the pattern centre, and the counts
are flat-fielded, so the outer parts of a pattern are weaker and noisier, as in kikuchipy's
real Ni scan (``train.run_config.FALLOFF_DEGRADATIONS``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from train.patterns.augment import AugmentConfig, AugmentError
from train.patterns.camera import as_recorded, tan_from_centre

SIDE = 64
PC = (0.5, 0.25, 0.5)


def _clean(n: int) -> torch.Tensor:
    """(n, SIDE, SIDE) band-like patterns of unit contrast everywhere."""
    y, x = torch.meshgrid(torch.arange(SIDE), torch.arange(SIDE), indexing="ij")
    phase = torch.arange(n).view(-1, 1, 1) * 0.7
    return 1.0 + torch.cos(0.5 * x + 0.3 * y + phase) + torch.cos(0.4 * y - 0.2 * x + phase)


def _ring_scores(recorded: torch.Tensor, clean: torch.Tensor, ring: np.ndarray) -> tuple:
    """Mean level, and correlation of record with clean pattern, on the ``ring`` pixels."""
    rec, ref = recorded[:, ring].numpy(), clean[:, ring].numpy()
    r = np.mean([np.corrcoef(a, b)[0, 1] for a, b in zip(rec, ref, strict=True)])
    return float(rec.mean()), float(r)


@pytest.mark.parametrize("falloff", [None, (1.2, 1.6)])
def test_the_outer_parts_are_weaker_only_with_the_falloff(falloff):
    n = 32
    clean = _clean(n)
    pcs = np.tile(PC, (n, 1))
    tan = tan_from_centre(pcs[:1], (SIDE, SIDE))[0].numpy()
    inner, outer = tan < 0.4, tan > 1.4
    recorded = as_recorded(
        clean, (0.3, 0.3), (500.0, 500.0), 0.0, torch.Generator().manual_seed(0),
        pcs=pcs, falloff_tan=falloff,
    )  # fmt: skip
    level_in, r_in = _ring_scores(recorded, clean, inner)
    level_out, r_out = _ring_scores(recorded, clean, outer)
    assert level_out == pytest.approx(level_in, rel=0.05)  # flat-fielded: no vignetting left
    if falloff is None:
        assert r_out == pytest.approx(r_in, abs=0.05)
    else:
        assert r_out < 0.6 * r_in, (r_in, r_out)


def test_tan_is_distance_over_detector_distance():
    tan = tan_from_centre(np.array([[0.5, 0.25, 0.5]]), (64, 64))[0]
    assert float(tan.min()) < 0.03  # the pixel at the centre
    assert float(tan[16, 63]) == pytest.approx(np.hypot(63.5 - 32, 16.5 - 16) / 32, rel=1e-5)


def test_a_bad_falloff_is_refused():
    with pytest.raises(AugmentError, match=r"falloff_tan=\(1.2, 0.0\): need two scales > 0"):
        AugmentConfig(falloff_tan=(1.2, 0.0))


def test_the_named_set_reaches_the_stream():
    from train.supervised import SupervisedConfig

    config = SupervisedConfig(image_size=32, detector_shape=(32, 32), degrade="lab-falloff")
    augment = config.stream_config(True).augment
    assert augment.falloff_tan == (1.2, 1.6)
    assert augment.fixed_pattern_noise > 0  # the lab-dim set underneath
