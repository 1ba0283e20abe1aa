"""Supervised training on Ray Train (2 CPU workers, DDP) from a lake of real tiny masters,
then evaluation and prediction from the CLI handlers."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from infra.app.evaluate_cli import evaluate_handler
from infra.app.predict_cli import predict_handler
from train.errors import TrainingError
from train.patterns.rendered_scan import render_scan
from train.runs.evaluate import evaluate_run, training_curve_png
from train.runs.run import open_lake
from train.runs.training import train_supervised
from train.supervised import SupervisedConfig

EASY_TASK = SupervisedConfig(
    arch="resnet10",
    epochs=5,
    image_size=48,
    detector_shape=(48, 48),
    batch_size=16,
    steps_per_epoch=40,
    lr=0.01,
    num_workers=2,
    seed=0,
)

pytest_plugins = ("training_fixtures",)  # session fixtures: one tiny lake per run


@pytest.fixture(scope="module")
def trained_run(training_lake, ray_two_cpus):
    """fcc / bcc / diamond, 9 training materials, 3 held out, 2 Ray Train workers."""
    result = train_supervised(
        training_lake.url, {}, training_lake.train_ids, EASY_TASK, "easy",
        val_ids=training_lake.test_ids, test_ids=training_lake.test_ids,
    )  # fmt: skip
    return result


def test_two_workers_learn_fcc_bcc_diamond_on_held_out_materials(training_lake, trained_run):
    assert trained_run.classes == [225, 227, 229]
    assert [h["epoch"] for h in trained_run.history] == [0, 1, 2, 3, 4]
    assert trained_run.history[-1]["loss"] < trained_run.history[0]["loss"]
    threads = {h["cpu_threads"] for h in trained_run.history}
    assert threads == {1}, (
        f"1-CPU workers must train on 1 torch thread whatever the shell: {threads}"
    )
    evaluation = evaluate_run(training_lake.url, {}, "easy", patterns_per_material=40)
    assert evaluation.n_patterns >= 120
    assert set(evaluation.per_material) == set(training_lake.test_ids)
    assert evaluation.accuracy > 0.5, f"chance is 1/3; got {evaluation.accuracy:.3f}"


def test_run_folder_holds_checkpoints_metrics_and_model(training_lake, trained_run):
    lake = open_lake(training_lake.url)
    config = json.loads(lake.get_run_file("easy", "config.json"))
    assert config["test_ids"] == training_lake.test_ids
    assert config["config"]["lr"] == 0.01
    metrics = json.loads(lake.get_run_file("easy", "metrics.json"))
    assert len(metrics["history"]) == 5
    assert all(0 <= h["val_accuracy"] <= 1 for h in metrics["history"])
    run_folder = Path(lake.run_location("easy")[0])
    checkpoints = [p for p in run_folder.rglob("checkpoint_*") if p.is_dir()]
    assert checkpoints, "Ray Train wrote no checkpoint in the run"
    assert len(checkpoints) <= 2, f"5 epochs must keep only the last two checkpoints: {checkpoints}"
    png = training_curve_png(training_lake.url, {}, "easy")
    assert png.startswith(b"\x89PNG")


def _args(training_lake, **values) -> argparse.Namespace:
    return argparse.Namespace(lake=training_lake.url, storage_options={}, cfg=None, **values)


def test_cli_evaluate_writes_confusion_csv_png_and_per_material(training_lake, trained_run, capsys):
    args = _args(
        training_lake, runs=["easy"], test_ids=None, patterns_per_material=20, ensemble=False
    )
    assert evaluate_handler(args) == 0
    out = capsys.readouterr().out
    assert "easy: accuracy" in out and "material t-sn" in out and "(20 patterns)" in out
    # the run's own evaluation if it is the first, else beside it (``confusion-ppm20.csv``...)
    names = out.splitlines()[-1].rsplit(": ", 1)[1].split(", ")
    lake = open_lake(training_lake.url)
    confusion = next(n for n in names if n.startswith("confusion") and n.endswith(".csv"))
    rows = list(csv.reader(io.StringIO(lake.get_run_file("easy", confusion).decode())))
    assert rows[0] == ["true\\predicted", "225", "227", "229"]
    assert sum(int(v) for row in rows[1:] for v in row[1:]) == 3 * 20
    png = next(n for n in names if n.endswith(".png"))
    assert lake.get_run_file("easy", png).startswith(b"\x89PNG")
    per_material = lake.get_run_file("easy", next(n for n in names if "per_material" in n))
    assert "t-ag" in per_material.decode() and "t-cr" in per_material.decode()


def test_cli_predict_a_real_scan_gives_csv_and_phase_map(
    training_lake, trained_run, nickel_scan_file, tmp_path, capsys
):
    args = _args(training_lake, run="easy", files=[nickel_scan_file], out=str(tmp_path))
    assert predict_handler(args) == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "patterns.csv").read_text())))
    assert len(rows) == 9  # kikuchipy's 3 x 3 Ni scan
    assert {r["row"] for r in rows} == {"0", "1", "2"}
    for row in rows:
        probabilities = [float(row[f"p_{c}"]) for c in (225, 227, 229)]
        assert abs(sum(probabilities) - 1) < 1e-4
        assert row["predicted"] == str((225, 227, 229)[probabilities.index(max(probabilities))])
    assert (tmp_path / "patterns_phase_map.png").read_bytes().startswith(b"\x89PNG")
    assert "9 patterns" in capsys.readouterr().out


def test_predict_reads_an_image_folder(training_lake, trained_run, tmp_path):
    import kikuchipy as kp
    from PIL import Image

    from train.runs.predict import predict_files

    folder = tmp_path / "images"
    folder.mkdir()
    for i, pattern in enumerate(kp.data.nickel_ebsd_small().data.reshape(-1, 60, 60)[:4]):
        Image.fromarray(pattern).save(folder / f"p{i}.png")
    (prediction,) = predict_files(training_lake.url, {}, "easy", [str(folder)])
    assert prediction.probabilities.shape == (4, 3)
    assert not prediction.is_map


def test_predict_reads_patterns_with_the_runs_own_preprocessing(training_lake, nickel_scan_file):
    """A run trained with non-default pre-processing stores it (reading.json), and predict
    prepares experimental patterns with it, not with the defaults."""
    from dataclasses import replace

    from train.patterns.experimental import read_patterns
    from train.patterns.network_input import network_input
    from train.patterns.preprocess import PreprocessConfig
    from train.patterns.scan_geometry import read_scan_geometry
    from train.runs.inference import load_run
    from train.runs.predict import predict_files

    preprocess = PreprocessConfig(dynamic_background_sigma=None, normalize="minmax")
    config = EASY_TASK.refine(epochs=1, steps_per_epoch=2, num_workers=1, preprocess=preprocess)
    train_supervised(training_lake.url, {}, training_lake.train_ids, config, "minmax")
    loaded = load_run(open_lake(training_lake.url), "minmax")
    assert loaded.reading.preprocess == preprocess
    assert loaded.reading.image_size == 48 and loaded.reading.detector.shape == (48, 48)
    (prediction,) = predict_files(training_lake.url, {}, "minmax", [nickel_scan_file])
    raw = read_patterns(nickel_scan_file).patterns
    geometry = read_scan_geometry(nickel_scan_file, raw.shape[-2:])
    expected = loaded.probabilities(network_input(raw, geometry, loaded.reading)).numpy()
    defaults = replace(loaded.reading, preprocess=PreprocessConfig())
    default = loaded.probabilities(network_input(raw, geometry, defaults)).numpy()
    np.testing.assert_allclose(prediction.probabilities, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(prediction.probabilities, default, atol=1e-4)


def test_a_run_s_cpu_threads_setting_is_what_its_worker_trains_on(training_lake):
    """``cpu_threads`` is a recorded setting of the run: the worker uses it, not its Ray CPU
    count (1) nor the shell's OMP_NUM_THREADS, and the history and config.json keep it."""
    config = EASY_TASK.refine(epochs=1, steps_per_epoch=2, num_workers=1, cpu_threads=2)
    result = train_supervised(training_lake.url, {}, training_lake.train_ids, config, "threads")
    assert [h["cpu_threads"] for h in result.history] == [2]
    stored = json.loads(open_lake(training_lake.url).get_run_file("threads", "config.json"))
    assert stored["config"]["cpu_threads"] == 2


def test_evaluating_a_missing_run_is_a_one_line_error(training_lake):
    with pytest.raises(TrainingError, match="run 'nope'"):
        evaluate_run(training_lake.url, {}, "nope")


def test_overlapping_train_and_test_materials_are_refused(training_lake):
    with pytest.raises(TrainingError, match="materials in train and test"):
        train_supervised(
            training_lake.url, {}, training_lake.train_ids, EASY_TASK, "bad",
            test_ids=training_lake.train_ids[:1],
        )  # fmt: skip


def test_predict_on_another_microscope_keeps_its_accuracy(training_lake, trained_run, tmp_path):
    """The same held-out materials and orientations, rendered by another renderer on the
    run's own detector and on another microscope's (4:3, another pattern centre, screen edge,
    background, noise): predict re-projects the second from its header onto the run's detector
    and calls it at least 0.8x as well as the first."""
    from kikuchipy.detectors import EBSDDetector

    from train.runs.predict import predict_files

    lake = open_lake(training_lake.url)
    ids = training_lake.test_ids
    lab = EBSDDetector(shape=(240, 320), pc=(0.48, 0.36, 0.62), px_size=50.0, sample_tilt=70.0)
    own_detector = EASY_TASK.detector().with_shape((48, 48)).to_kikuchipy()
    labels = render_scan(lake, ids, tmp_path / "lab.h5", lab, degrade=True)
    assert render_scan(lake, ids, tmp_path / "own.h5", own_detector, degrade=False) == labels
    files = [str(tmp_path / "own.h5"), str(tmp_path / "lab.h5")]
    own, lab_prediction = predict_files(training_lake.url, {}, "easy", files)
    assert "pattern centre from the file" in lab_prediction.geometry_note
    accuracy = [
        float(np.mean([p == t for p, t in zip(pred.predicted, labels, strict=True)]))
        for pred in (own, lab_prediction)
    ]
    assert accuracy[0] > 0.4, f"the run's own geometry: {accuracy[0]:.2f} (chance 0.33)"
    assert accuracy[1] >= 0.8 * accuracy[0], (
        f"lab {accuracy[1]:.2f} vs the run's own geometry {accuracy[0]:.2f}"
    )


def test_the_three_ni_formats_are_read_with_their_own_geometry(training_lake, trained_run):
    """kikuchipy's Ni scan in three formats: the h5ebsd header's pattern centre and static
    background are used; NORDIF has a background but no centre; EDAX's centre is unusable.
    Each file says what it used, and the three give different inputs."""
    from train.patterns.sample_scans import kikuchipy_ni_files
    from train.runs.predict import predict_files

    files = [kikuchipy_ni_files()[name] for name in ("h5ebsd", "NORDIF", "EDAX")]
    predictions = predict_files(training_lake.url, {}, "easy", [str(f) for f in files])
    notes = [p.geometry_note for p in predictions]
    assert notes[0].startswith("pattern centre from the file (Bruker 0.425, 0.213, 0.501)")
    assert "static background from the file" in notes[0]
    assert notes[1].startswith("no pattern centre in the file: centre crop")
    assert "not a usable geometry" in notes[2]
    probabilities = [p.probabilities for p in predictions]
    assert not np.allclose(probabilities[0], probabilities[1])
    assert not np.allclose(probabilities[1], probabilities[2])
