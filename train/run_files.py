"""File names of a training run (``runs/<run_id>/`` of a lake) and of a model package, which is
a copy of a finished run's files: one list, read by the run store (``train.runs.run``), by the
package finder (``train.shipped``) and by a run that starts from a package
(``train.initial_weights``)."""

from __future__ import annotations

CONFIG_FILE = "config.json"
"""The full run configuration: kind, settings, train/test material ids, lake URL."""
CLASSES_FILE = "classes.json"
"""Label values in logit order."""
READING_FILE = "reading.json"
"""How the run reads a pattern (``train.patterns.reading.PatternReading``)."""
METRICS_FILE = "metrics.json"
MODEL_FILE = "model.pt"
"""The final weights (a torch state dict per network); written last, it marks a run finished."""
EVALUATION_FILE = "evaluation.json"
TARGET_PREDICTIONS_FILE = "target_predictions.json"
PROTOCOL_FILE = "protocol.json"
TRAINING_CURVE_FILE = "training_curve.png"
CALIBRATION_FILE = "calibration.json"
"""Temperature and uncertainty threshold (``train.runs.calibration.Calibration``)."""
CARD_FILE = "card.json"
"""Model card written by ``ebsdlake model export`` (``train.runs.package``)."""
