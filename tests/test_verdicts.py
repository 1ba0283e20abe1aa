"""Per-pattern verdicts and the per-file summary line (train/runs/prediction_outputs.py): a
model with a learnt ``outside`` class says "outside" for a confident call of it."""

from __future__ import annotations

import csv
import io

import numpy as np

from train.runs.prediction_outputs import Prediction, predictions_csv, summary_line

PROBABILITIES = np.array(
    [
        [0.90, 0.05, 0.05],  # a confident call of the first class
        [0.10, 0.10, 0.80],  # a confident call of the last class
        [0.40, 0.30, 0.30],  # below the threshold
        [0.05, 0.05, 0.90],  # sure, but the pattern has no bands
    ],
    dtype=np.float32,
)
QUALITY = np.array([0.2, 0.2, 0.2, 0.0], dtype=np.float32)


def _prediction(classes: list) -> Prediction:
    return Prediction(
        run_id="r", source="scan.h5", nav_shape=(4,), classes=classes,
        probabilities=PROBABILITIES, label="disordered_spacegroup", threshold=0.6,
        calibrated=True, quality=QUALITY,
    )  # fmt: skip


def test_a_confident_outside_call_is_its_own_verdict():
    prediction = _prediction([225, 229, "outside"])
    assert prediction.verdict == ["confident", "outside", "uncertain", "uncertain"]
    line = summary_line(prediction)
    assert "confident 1 (Fm-3m 1), outside the classes 1, uncertain 2 " in line
    rows = list(csv.DictReader(io.StringIO(predictions_csv(prediction).decode())))
    assert [r["verdict"] for r in rows] == prediction.verdict
    assert rows[1]["symbol"] == "outside"


def test_without_the_class_a_confident_call_is_a_call():
    prediction = _prediction([225, 229, 221])
    assert prediction.verdict == ["confident", "confident", "uncertain", "uncertain"]
    line = summary_line(prediction)
    assert "confident 2 (Fm-3m 1, Pm-3m 1), uncertain 2 " in line
    assert "outside" not in line


def test_the_summary_pools_the_file_s_probabilities_without_a_verdict():
    """The mean over patterns names the two leading classes, uncertain patterns included."""
    line = summary_line(_prediction([225, 229, 221]))
    # means: Fm-3m (0.90+0.10+0.40+0.05)/4 = 0.36, Pm-3m 0.51, Im-3m 0.125
    assert line.endswith("; mean over the file Pm-3m 0.51, Fm-3m 0.36")
