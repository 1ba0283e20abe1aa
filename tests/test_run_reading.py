"""How a stored run reads a pattern (``reading.json``), including runs stored before it."""

from __future__ import annotations

import json

from run_fixtures import TINY, stored_run

from train.runs.run import CONFIG_FILE, Run

pytest_plugins = ("training_fixtures",)  # session fixtures: one tiny lake per run


def test_a_run_from_before_reading_json_reads_patterns_as_it_was_trained(training_lake):
    """Runs stored before ``reading.json`` existed trained with the default pre-processing and
    the paper's detector at their ``detector_shape``: that is how they are read back."""
    from train.patterns.preprocess import PreprocessConfig
    from train.runs.inference import load_run

    lake = stored_run(training_lake.url, "err-old", reading=False).lake
    settings = json.loads(lake.get_run_file("err-old", CONFIG_FILE))
    del settings["config"]["preprocess"]  # as runs of that time stored it
    Run(lake, "err-old").put_json(CONFIG_FILE, settings)
    reading = load_run(lake, "err-old").reading
    assert reading.preprocess == PreprocessConfig()
    assert reading.image_size == TINY.image_size
    assert reading.detector == TINY.detector()
    assert reading.classes == (225, 227, 229)
