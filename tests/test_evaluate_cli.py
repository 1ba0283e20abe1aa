"""``ebsdlake evaluate`` (issue #15): exactly N patterns per material, counts printed, and
evaluations with other settings stored beside the run's own instead of over it.

Runs are written as ``train_supervised`` leaves them, with a real, untrained ResNet (the tests
count patterns and files, not accuracy), so no test needs Ray.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
from run_fixtures import TINY, stored_run

from infra.app.cli import main
from train.patterns.sampling import material_plan
from train.runs.evaluate import evaluate_run, own_settings
from train.runs.run import (
    EVALUATION_FILE,
    Run,
)

pytest_plugins = ("training_fixtures",)  # session fixtures: one tiny lake per run

OWN_FILES = (EVALUATION_FILE, "per_class.csv", "per_material.csv", "confusion.csv", "confusion.png")


def _stored_run(lake_url: str, run_id: str, train_ids: list[str], test_ids: list[str]) -> Run:
    """A finished supervised run folder (untrained weights) holding out ``test_ids``."""
    return stored_run(lake_url, run_id, TINY, train_ids, test_ids)


def _evaluate(capsys, lake_url: str, *argv: str) -> str:
    """Run ``ebsdlake evaluate ...``; assert it succeeded; return its stdout."""
    code = main(["--lake", lake_url, "evaluate", *argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def test_material_plan_holds_exactly_n_of_each_material_in_padded_batches():
    plan = material_plan(3, 4, 5, seed=1)
    kept = plan.material_index[plan.sample_id >= 0]
    assert np.bincount(kept).tolist() == [4, 4, 4]
    assert plan.material_index.shape == (3, 5) and (plan.sample_id < 0).sum() == 3
    again = material_plan(3, 4, 5, seed=1)
    assert np.array_equal(again.seeds, plan.seeds)


def test_evaluate_takes_exactly_n_patterns_per_material_and_prints_counts(training_lake, capsys):
    """Six test materials (two per class) at 5 patterns each, in batches of 8: every material
    gets 5 patterns and every class 10, in the stored matrix and in what is printed."""
    test_ids = ["t-ag", "t-ni", "t-cr", "t-mo", "t-sn", "t-ge"]
    run = _stored_run(training_lake.url, "ev-count", ["t-cu", "t-fe", "t-si"], test_ids)
    out = _evaluate(capsys, training_lake.url, "ev-count", "--patterns-per-material", "5")
    stored = run.get_json(EVALUATION_FILE)
    assert stored["n_patterns"] == 30
    assert [sum(row) for row in stored["confusion"]] == [10, 10, 10]
    assert stored["material_counts"] == dict.fromkeys(sorted(test_ids), 5)
    assert "ev-count: accuracy" in out
    assert "on 30 patterns (5 per material, 6 materials, 3 classes)" in out
    lines = out.splitlines()
    for label in (225, 227, 229):
        (line,) = [li for li in lines if li.startswith(f"  class {label}: ")]
        assert line.endswith("(10 patterns)"), line
    for material in test_ids:
        (line,) = [li for li in lines if li.startswith(f"  material {material}: ")]
        assert line.endswith("(5 patterns)"), line


def test_other_settings_are_stored_beside_the_runs_own_evaluation(training_lake, capsys):
    """The protocol evaluates the run first (3 patterns per material, through the API); later
    evaluations at other settings leave its files as they are and go beside them."""
    url = training_lake.url
    run = _stored_run(url, "ev-beside", training_lake.train_ids, training_lake.test_ids)
    evaluate_run(url, {}, "ev-beside", patterns_per_material=3)  # what run_protocol does
    own = {name: run.get_bytes(name) for name in OWN_FILES}
    assert json.loads(own[EVALUATION_FILE])["settings"]["patterns_per_material"] == 3

    out = _evaluate(capsys, url, "ev-beside", "--patterns-per-material", "4")
    assert {name: run.get_bytes(name) for name in OWN_FILES} == own
    other = run.get_json("evaluation-ppm4.json")
    assert other["n_patterns"] == 12 and other["settings"]["patterns_per_material"] == 4
    for name in ("per_class-ppm4.csv", "per_material-ppm4.csv", "confusion-ppm4.csv"):
        assert run.has(name), name
    assert run.get_bytes("confusion-ppm4.png").startswith(b"\x89PNG")
    assert "stored beside the run's own evaluation (3 held-out materials, 3 patterns per " in out
    assert f"in {run.folder}: evaluation-ppm4.json, confusion-ppm4.csv" in out

    out = _evaluate(
        capsys, url, "ev-beside", "--test-ids", "t-cu", "t-ag", "--patterns-per-material", "2"
    )
    digest = hashlib.sha1(b"t-ag,t-cu").hexdigest()[:8]
    named = run.get_json(f"evaluation-ids-{digest}-ppm2.json")
    assert named["settings"] == {"test_ids": ["t-ag", "t-cu"], "patterns_per_material": 2}
    assert named["n_patterns"] == 4 and f"evaluation-ids-{digest}-ppm2.json" in out
    assert {name: run.get_bytes(name) for name in OWN_FILES} == own

    out = _evaluate(capsys, url, "ev-beside")  # the run's own settings: its own files again
    assert "on 9 patterns (3 per material, 3 materials, 3 classes)" in out
    assert f"stored as the run's own evaluation in {run.folder}: evaluation.json" in out
    assert run.get_json(EVALUATION_FILE) == json.loads(own[EVALUATION_FILE])


def test_an_evaluation_stored_before_settings_were_recorded_keeps_its_count(training_lake):
    """An ``evaluation.json`` without ``settings`` (older runs) was the run's own: its
    patterns per material are its pattern count over the held-out materials."""
    run = _stored_run(training_lake.url, "ev-legacy", ["t-cu"], ["t-ag", "t-cr", "t-sn"])
    run.put_json(EVALUATION_FILE, {"run_id": "ev-legacy", "accuracy": 0.5, "n_patterns": 300})
    own = own_settings(run, run.config)
    assert own.test_ids == ("t-ag", "t-cr", "t-sn") and own.patterns_per_material == 100
