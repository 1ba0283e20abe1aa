"""``ebsdlake bench science``: one protocol per label on one shared held-out set, as a table."""

from __future__ import annotations

import csv

import pytest

from infra.app.cli import main
from train.runs.run import PROTOCOL_FILE, Run, open_lake

pytest_plugins = ("training_fixtures",)


def test_bench_science_compares_labels_on_the_same_held_out_materials(
    training_lake, ray_two_cpus, tmp_path, capsys
):
    out = tmp_path / "science"
    args = [
        "--labels", "spacegroup", "bravais_lattice", "--folds", "2", "--epochs", "2",
        "--arch", "resnet10", "--image-size", "32", "--detector-size", "32",
        "--batch-size", "8", "--steps-per-epoch", "3", "--lr", "0.01",
        "--holdout-fraction", "0.25", "--run-prefix", "sci", "--out", str(out),
    ]  # fmt: skip
    assert main(["--lake", training_lake.url, "bench", "science", *args]) == 0
    printed = capsys.readouterr().out
    assert "| spacegroup |" in printed and "| bravais_lattice |" in printed

    lake = open_lake(training_lake.url)
    summaries = [Run(lake, f"sci-{label}").get_json(PROTOCOL_FILE)
                 for label in ("spacegroup", "bravais_lattice")]  # fmt: skip
    held = [sorted(s["test_ids"]) for s in summaries]
    assert held[0] == held[1] and held[0], "every label must be tested on the same materials"
    # stratified on (space group, Bravais lattice): each of the three classes gives one
    assert len(held[0]) == 3
    for summary in summaries:
        assert not set(summary["train_ids"]) & set(summary["test_ids"])
        assert len(summary["folds"]) == 2 and 1 <= summary["final_epochs"] <= 2
        assert 0.0 <= summary["test_accuracy"] <= 1.0

    # a second run reads both finished protocols back instead of training again
    assert main(["--lake", training_lake.url, "bench", "science", *args]) == 0
    again = capsys.readouterr().out
    assert "spacegroup: reusing the finished protocol 'sci-spacegroup'" in again
    assert "bravais_lattice: reusing" in again

    rows = list(csv.DictReader((out / "results.csv").read_text().splitlines()))
    assert [r["label"] for r in rows] == ["spacegroup", "bravais_lattice"]
    assert float(rows[0]["test_accuracy"]) == summaries[0]["test_accuracy"]
    assert (out / "results.md").read_text().count("\n| ") == 2  # the two label rows


def test_bench_science_says_what_the_lake_lacks(tmp_path, capsys):
    lake = str(tmp_path / "lake")
    assert main(["--lake", lake, "ingest", "prototypes", "--only", "Ni"]) == 0
    assert main(["--lake", lake, "bench", "science", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no complete master among variants ['default']; run `ebsdlake simulate`" in err
    assert "Traceback" not in err


def test_bench_science_needs_a_material_per_fold(training_lake, ray_two_cpus, tmp_path, capsys):
    args = [
        "--lake",
        training_lake.url,
        "bench",
        "science",
        "--folds",
        "20",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 2
    assert "--folds 20: needs at least 20 training materials, the lake has 9" in (
        capsys.readouterr().err
    )


def test_bench_science_names_a_bad_label(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:  # argparse's own usage error
        main(["--lake", str(tmp_path / "lake"), "bench", "science", "--labels", "colour",
              "--out", str(tmp_path / "o")])  # fmt: skip
    assert exited.value.code == 2
    assert "invalid choice: 'colour'" in capsys.readouterr().err
