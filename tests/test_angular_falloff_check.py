"""scripts/angular_falloff_check.py on the training fixture's Ni master (npx 32): the real Ni
patterns agree with our simulation less away from the pattern centre, and the camera model's
fall-off makes a recorded simulation do the same."""

from __future__ import annotations

import sys
from pathlib import Path

from training_fixtures import training_lake, training_masters  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


def test_real_ni_loses_its_bands_away_from_the_centre_and_the_falloff_follows(training_lake):  # noqa: F811
    from angular_falloff_check import RECORDINGS, RINGS, measure

    profile = measure(training_lake.url, "t-ni")
    rings = len(RINGS) - 1
    assert len(profile.real) == rings and len(profile.background) == rings
    # the real patterns are Ni: near the centre they match our Ni master, at the edge far less
    assert profile.real[0] > 0.4, profile.real
    assert profile.real[-1] < profile.real[0] - 0.3, profile.real
    # the recorded background is brightest near the centre (vignetting)
    assert profile.background[0] > profile.background[-1], profile.background
    for contrast, dose in RECORDINGS:
        flat = profile.recorded[(contrast, dose, False)]
        falloff = profile.recorded[(contrast, dose, True)]
        # same centre, weaker outer rings: the fall-off takes bands away where the real ones fade
        assert abs(falloff[0] - flat[0]) < 0.1, (flat, falloff)
        assert falloff[-1] < flat[-1] - 0.1, (flat, falloff)
