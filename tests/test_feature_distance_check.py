"""scripts/feature_distance_check.py: its three distances rank a far point above near ones."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


def test_the_distances_put_a_point_off_the_training_clusters_furthest():
    from feature_distance_check import MahalanobisFit, energy, knn_distance

    rng = np.random.default_rng(0)
    centres = np.array([[5.0, 0, 0, 0], [0, 5.0, 0, 0], [0, 0, 5.0, 0]])
    labels = np.repeat([0, 1, 2], 200)
    features = centres[labels] + rng.normal(size=(600, 4))
    near = centres + rng.normal(scale=0.5, size=(3, 4))
    far = np.array([[0, 0, 0, 9.0]])
    fit = MahalanobisFit.fit(features, labels)
    assert fit.distance(far)[0] > 5 * fit.distance(near).max()
    nearest = knn_distance(features, k=10)
    assert nearest(far)[0] > nearest(near).max()
    confident, flat = np.array([[9.0, 0.0, 0.0]]), np.array([[0.1, 0.0, 0.0]])
    assert energy(flat)[0] > energy(confident)[0]  # higher: further from the training data
