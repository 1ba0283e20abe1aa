"""MCD end to end on Ray Train: simulated source (default + random-B variants) from the lake,
kikuchipy's real Ni scan as the target, an ensemble of two runs and its majority vote."""

from __future__ import annotations

import json

import pytest

from train.mcd import MCDConfig
from train.patterns.errors import PatternError
from train.patterns.experimental import TargetSpec, image_quality, load_target_set, read_patterns
from train.patterns.preprocess import PreprocessConfig
from train.runs.evaluate import evaluate_run
from train.runs.mcd_ensemble import ensemble_vote, train_mcd_ensemble
from train.runs.run import open_lake

TINY_MCD = MCDConfig(
    arch="resnet10", epochs=2, image_size=32, detector_shape=(32, 32), batch_size=8,
    steps_per_epoch=2, top_n=5, variants=("default", "b01"), num_workers=2,
)  # fmt: skip

pytest_plugins = ("training_fixtures",)  # session fixtures: one tiny lake per run


def test_top_n_by_image_quality_keeps_the_sharpest_patterns(nickel_scan_file):
    patterns = read_patterns(nickel_scan_file).patterns
    quality = image_quality(patterns)
    target = load_target_set([TargetSpec(nickel_scan_file, 225)], 3, PreprocessConfig(), 32)
    assert target.patterns.shape == (3, 1, 32, 32)
    assert target.labels == [225, 225, 225] and target.labelled
    assert quality.shape == (9,) and len(set(quality.tolist())) > 1


def test_target_spec_parses_an_optional_label():
    assert TargetSpec.parse("scan.h5=225") == TargetSpec("scan.h5", 225)
    assert TargetSpec.parse("folder") == TargetSpec("folder", None)
    with pytest.raises(PatternError, match="empty label"):
        TargetSpec.parse("scan.h5=")


def test_mcd_ensemble_runs_end_to_end_and_votes(training_lake, ray_two_cpus, nickel_scan_file):
    results = train_mcd_ensemble(
        training_lake.url, {}, training_lake.train_ids, [TargetSpec(nickel_scan_file, 225)],
        TINY_MCD, "mcd", runs=2,
    )  # fmt: skip
    assert [r.run_id for r in results] == ["mcd-r00", "mcd-r01"]
    for result in results:
        assert [h["epoch"] for h in result.history] == [0, 1]
        assert all(h["discrepancy"] >= 0 and h["source_ce"] > 0 for h in result.history)
    lake = open_lake(training_lake.url)
    table = json.loads(lake.get_run_file("mcd-r00", "target_predictions.json"))
    assert len(table["predicted"]) == 5 and set(table["labels"]) == {225}
    assert set(table["predicted"]) <= {225, 227, 229}
    vote = ensemble_vote(training_lake.url, {}, ["mcd-r00", "mcd-r01"])
    assert 0 <= vote["accuracy"] <= 1 and list(vote["per_material"]) == [nickel_scan_file]
    assert vote["run_accuracy"]["n"] == 2
    evaluation = evaluate_run(training_lake.url, {}, "mcd-r01")
    expected = sum(p == 225 for p in json.loads(
        lake.get_run_file("mcd-r01", "target_predictions.json"))["predicted"]) / 5  # fmt: skip
    assert evaluation.accuracy == pytest.approx(expected)
