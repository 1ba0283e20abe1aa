"""Stored runs without Ray: run folders as the training driver leaves them, with an untrained
network, for tests of everything that reads a run back (evaluate, predict, errors)."""

from __future__ import annotations

from train.models import build_classifier
from train.runs.run import CLASSES_FILE, CONFIG_FILE, METRICS_FILE, READING_FILE, Run, open_lake
from train.runs.training import run_config_of
from train.supervised import SupervisedConfig

TINY = SupervisedConfig(
    arch="resnet10", epochs=1, image_size=32, detector_shape=(32, 32), batch_size=8,
    steps_per_epoch=2, patterns_per_material=4, lr=0.01,
)  # fmt: skip
CLASSES = [225, 227, 229]


def supervised_run_config(config, lake_url, train_ids, val_ids=None, test_ids=None):
    """``config.json`` of a supervised run, as the training driver writes it."""
    return run_config_of("supervised", config, lake_url, train_ids, val_ids, test_ids)


def stored_run(
    lake_url, run_id, config=TINY, train_ids=(), test_ids=(), finished=True, reading=True
) -> Run:
    """A run folder as ``train_supervised`` leaves it (finished: with a model.pt)."""
    run = Run(open_lake(lake_url, {}, mode="a"), run_id)
    run_config = supervised_run_config(config, lake_url, list(train_ids), None, list(test_ids))
    run.put_json(CONFIG_FILE, run_config)
    run.put_json(CLASSES_FILE, CLASSES)
    if reading:
        run.put_json(READING_FILE, config.reading(CLASSES).to_dict())
    if finished:
        run.put_json(METRICS_FILE, {"history": [{"epoch": 0, "loss": 1.0}]})
        run.put_model({"model": build_classifier(len(CLASSES), config.arch).state_dict()})
    return run
