"""scripts/texture_tolerance.py: it measures a known texture, and on kikuchipy's real Ni scan
its untouched row is what ``predict`` says about the file."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


@pytest.mark.parametrize(("grain_px", "lag1_range"), [(0.0, (-0.1, 0.1)), (0.8, (0.35, 0.7))])
def test_a_known_texture_is_measured(grain_px, lag1_range):
    from texture_tolerance import texture_field, texture_of

    side = 120
    y, x = np.mgrid[0:side, 0:side] / side - 0.5
    vignetting = 200.0 * np.exp(-(x**2 + y**2) / 0.3)
    texture = texture_field((side, side), 0.03, grain_px, seed=3)
    inner = np.zeros((side, side), dtype=bool)
    inner[6:-6, 6:-6] = True  # away from the blur's reflected edge
    rms, lag1 = texture_of(vignetting * texture, inner)
    # the 2 px blur keeps a little of a grainy texture: a few tenths of it for 0.8 px
    low = 0.025 if grain_px == 0 else 0.015
    assert low < rms < 0.032, rms
    assert lag1_range[0] < lag1 < lag1_range[1], lag1
    plain_rms, _ = texture_of(vignetting, inner)
    assert plain_rms < 0.002, plain_rms


def test_on_the_real_ni_scan_the_untouched_row_is_predicts_answer():
    from texture_tolerance import AMPLITUDES, measure

    from train.patterns.sample_scans import kikuchipy_ni_files
    from train.runs.inference import load_model
    from train.runs.predict import predict_file

    path = kikuchipy_ni_files()["h5ebsd"]
    result = measure("cubic-lab", path)
    # the camera's own texture: a couple of per cent, correlated between neighbouring pixels
    assert 0.012 < result.texture_rms < 0.035, result.texture_rms
    assert result.texture_lag1 > 0.3, result.texture_lag1
    assert 0.01 < result.band_rms < 0.05, result.band_rms
    assert len(result.rows) == 2 + 2 * len(AMPLITUDES)
    assert all(sum(row.calls.values()) == 9 for row in result.rows)
    prediction = predict_file(load_model("cubic-lab"), path)
    calls = [
        symbol if verdict == "confident" else "uncertain"
        for symbol, verdict in zip(
            np.array(prediction.symbols)[prediction.probabilities.argmax(1)],
            prediction.verdict,
            strict=True,
        )
    ]
    untouched = result.rows[0]
    assert untouched.texture == "none"
    assert untouched.calls == {name: calls.count(name) for name in set(calls)}
