"""Calibration, prediction outputs and model packages on a real Ray Train run of tiny masters.

One module-scoped run (fcc / bcc / diamond, 2 CPU workers) is evaluated, calibrated through the
CLI handler, predicted on kikuchipy's real Ni scan and on random noise, exported as a package
and used again by path, without its lake.
"""

from __future__ import annotations

import argparse
import csv
import io
import json

import numpy as np
import pytest

from infra.app.model_cli import calibrate_handler, export_handler, ls_handler
from infra.app.predict_cli import predict_handler
from train.errors import TrainingError
from train.runs.calibration import (
    MIN_IMAGE_QUALITY,
    Calibration,
    choose_threshold,
    expected_calibration_error,
    fit_temperature,
    temperature_scaled,
    verdicts,
)
from train.runs.evaluate import evaluate_run
from train.runs.inference import load_model, load_run
from train.runs.run import CALIBRATION_FILE, CARD_FILE, Run, open_lake
from train.runs.training import train_supervised
from train.supervised import SupervisedConfig

pytest_plugins = ("training_fixtures",)

TASK = SupervisedConfig(
    arch="resnet10", epochs=4, image_size=48, detector_shape=(48, 48), batch_size=16,
    steps_per_epoch=30, lr=0.01, num_workers=2, seed=0,
)  # fmt: skip
RUN = "pkg"


def _args(lake, **values) -> argparse.Namespace:
    return argparse.Namespace(lake=lake.url, storage_options={}, cfg=None, **values)


@pytest.fixture(scope="module")
def calibrated_run(training_lake, ray_two_cpus):
    """The run, evaluated on its held-out materials and calibrated on its validation ones."""
    train_supervised(
        training_lake.url, {}, training_lake.train_ids, TASK, RUN,
        val_ids=training_lake.test_ids, test_ids=training_lake.test_ids,
    )  # fmt: skip
    evaluate_run(training_lake.url, {}, RUN, patterns_per_material=20)
    args = _args(
        training_lake, run=RUN, patterns_per_material=40, materials=None, target_precision=None
    )
    assert calibrate_handler(args) == 0
    return RUN


def test_temperature_scaling_fixes_an_overconfident_model():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 3000)
    logits = rng.normal(0, 1, (3000, 3))
    logits[np.arange(3000), labels] += 1.0  # right about 2/3 of the time
    overconfident = temperature_scaled(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 0.2)
    temperature = fit_temperature(overconfident, labels)
    assert temperature > 2
    before = expected_calibration_error(overconfident, labels)
    after = expected_calibration_error(temperature_scaled(overconfident, temperature), labels)
    assert after < before / 3
    threshold, reached = choose_threshold(temperature_scaled(overconfident, temperature), labels)
    assert reached and 0.34 < threshold < 1


def test_threshold_is_the_smallest_that_reaches_the_target_precision():
    probabilities = np.array([[0.95, 0.05], [0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
    labels = np.array([0, 0, 0, 1, 1])  # the three most confident calls are right
    assert choose_threshold(probabilities, labels, 0.9) == (0.8, True)
    assert choose_threshold(probabilities, np.ones(5, int), 0.9) == (1.0, False)


def test_a_confident_call_is_more_probable_than_the_rest_together():
    """A model right on every calibration pattern would get its lowest top probability as the
    threshold; the floor keeps it at 0.5."""
    probabilities = np.array([[0.9, 0.05, 0.05], [0.45, 0.3, 0.25], [0.35, 0.33, 0.32]])
    labels = np.zeros(3, int)
    assert choose_threshold(probabilities, labels, 0.9, floor=0.0) == (0.35, True)
    assert choose_threshold(probabilities, labels, 0.9) == (0.5, True)


def test_calibration_is_stored_and_lowers_ece_on_the_fit_set(training_lake, calibrated_run):
    lake = open_lake(training_lake.url)
    stored = Calibration.from_dict(Run(lake, calibrated_run).get_json(CALIBRATION_FILE))
    assert stored.fit_materials == sorted(training_lake.test_ids)
    assert stored.n_patterns == 3 * 40
    assert stored.ece_after <= stored.ece_before
    if abs(stored.temperature - 1) > 0.05:
        assert stored.ece_after < stored.ece_before
    loaded = load_run(lake, calibrated_run)
    assert loaded.calibration == stored and loaded.threshold == stored.threshold


def test_calibrating_on_training_materials_is_refused(training_lake, calibrated_run):
    from train.runs.calibrate import calibrate_run

    with pytest.raises(TrainingError, match="trained on"):
        calibrate_run(training_lake.url, {}, RUN, 5, material_ids=training_lake.train_ids[:1])


def test_random_noise_comes_out_uncertain(training_lake, calibrated_run, tmp_path):
    from PIL import Image

    from train.runs.predict import predict_files

    folder = tmp_path / "noise"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (60, 60), dtype=np.uint8)).save(folder / f"n{i}.png")
    (prediction,) = predict_files(training_lake.url, {}, RUN, [str(folder)])
    assert prediction.calibrated
    assert prediction.verdict == ["uncertain"] * 6, prediction.confidence
    assert prediction.quality is not None and (prediction.quality < MIN_IMAGE_QUALITY).all()
    # uncertain whatever the network says: no bands, whatever the threshold
    assert verdicts(prediction.probabilities, 0.0, prediction.quality) == ["uncertain"] * 6


def test_predict_csv_summary_and_unique_outputs(
    training_lake, calibrated_run, nickel_scan_file, tmp_path, capsys
):
    import shutil

    twin = tmp_path / "other" / "patterns.h5"
    twin.parent.mkdir()
    shutil.copy(nickel_scan_file, twin)
    out = tmp_path / "out"
    args = _args(training_lake, run=RUN, files=[nickel_scan_file, str(twin)], out=str(out))
    assert predict_handler(args) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2 and all("9 patterns; confident" in line for line in printed)
    assert "calibrated" in printed[0]
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "patterns-2.csv", "patterns-2_phase_map.png", "patterns.csv", "patterns_phase_map.png"
    ]  # fmt: skip
    rows = list(csv.DictReader(io.StringIO((out / "patterns.csv").read_text())))
    assert len(rows) == 9
    for row in rows:
        probabilities = [float(row[f"p_{c}"]) for c in (225, 227, 229)]
        assert abs(sum(probabilities) - 1) < 1e-4
        assert float(row["probability"]) == pytest.approx(max(probabilities), abs=1e-6)
        assert row["symbol"] in {"Fm-3m", "Fd-3m", "Im-3m"}
        assert row["verdict"] in {"confident", "uncertain"}
        assert float(row["image_quality"]) > 0
    before = (out / "patterns.csv").read_bytes()
    again = _args(training_lake, run=RUN, files=[nickel_scan_file], out=str(out))
    assert predict_handler(again) == 0
    assert (out / "patterns.csv").read_bytes() == before  # never overwritten
    assert (out / "patterns-3.csv").exists()


def test_export_a_package_and_predict_with_it_without_the_lake(
    training_lake, calibrated_run, nickel_scan_file, tmp_path, capsys
):
    models = tmp_path / "models"
    args = _args(training_lake, run=RUN, name="tiny-cubic", out=str(models))
    assert export_handler(args) == 0
    folder = models / "tiny-cubic"
    assert {p.name for p in folder.iterdir()} == {
        "model.pt", "config.json", "classes.json", "reading.json", "calibration.json",
        "card.json", "card.md", "confusion.png",
    }  # fmt: skip
    card = json.loads((folder / "card.json").read_text())
    assert card["symbols"] == ["Fm-3m", "Fd-3m", "Im-3m"]
    assert card["accuracy"]["interval_over_materials"]["n"] == 3
    assert card["training"]["train_ids"] == training_lake.train_ids
    assert card["size_mb"] > 0 and "ebsdlake --lake LAKE train --run-id pkg" in card["rebuild"][0]
    assert "## Rebuild" in (folder / "card.md").read_text()
    with pytest.raises(TrainingError, match="exists"):
        export_handler(args)

    packaged, original = load_model(folder), load_run(open_lake(training_lake.url), RUN)
    assert packaged.calibration == original.calibration
    patterns = np.random.default_rng(0).normal(size=(4, 1, 48, 48)).astype(np.float32)
    import torch

    stored = torch.load(folder / "model.pt", weights_only=True)
    assert stored["model"]["fc.weight"].dtype == torch.float16  # half the bytes in the repo
    np.testing.assert_allclose(
        packaged.probabilities(torch.from_numpy(patterns)).numpy(),
        original.probabilities(torch.from_numpy(patterns)).numpy(),
        atol=5e-3,
    )
    out = tmp_path / "by-path"
    no_lake = argparse.Namespace(
        lake=str(tmp_path / "no-lake"), storage_options={}, cfg=None, run=None,
        files=[nickel_scan_file], out=str(out), model=str(folder),
    )  # fmt: skip
    capsys.readouterr()
    assert predict_handler(no_lake) == 0
    assert "9 patterns" in capsys.readouterr().out and (out / "patterns.csv").exists()

    assert ls_handler(_args(training_lake)) == 0
    listed = capsys.readouterr().out
    assert RUN in listed and "lake run" in listed and "Fm-3m Fd-3m Im-3m" in listed
    assert Run(open_lake(training_lake.url), RUN).has(CARD_FILE)
    with pytest.raises(TrainingError, match="no shipped model"):
        load_model("no-such-model")


def test_an_uncalibrated_run_is_not_exported(training_lake, calibrated_run, tmp_path):
    from train.runs.package import export_model

    lake = open_lake(training_lake.url, mode="a")
    run = Run(lake, "pkg-copy")
    source = Run(lake, RUN)
    for name in ("config.json", "classes.json", "reading.json", "model.pt"):
        run.put_bytes(name, source.get_bytes(name))
    with pytest.raises(TrainingError, match="calibrate pkg-copy"):
        export_model(training_lake.url, {}, "pkg-copy", "x", tmp_path)
    loaded = load_run(lake, "pkg-copy")
    assert loaded.calibration is None and loaded.threshold == 0.9


def test_rebuild_commands_carry_the_lab_detector_flags():
    """A recipe run's geometry and degradations are train flags now, so the card's rebuild
    command carries them (and no note about settings without a flag for them)."""
    from train.runs.package import rebuild_commands

    settings = {
        "arch": "resnet18", "epochs": 16, "pc": [0.5, 0.3, 0.6], "degrade": True,
        "pc_range": [[0.35, 0.65], [0.15, 0.45], [0.45, 0.8]], "detector_shape": [72, 72],
    }  # fmt: skip
    card = {
        "name": "m", "run_id": "r", "calibration": {"n_patterns": 10, "fit_materials": ["a"]},
        "training": {"settings": settings, "train_ids": ["a"], "test_ids": ["b"]},
    }  # fmt: skip
    train_line = rebuild_commands(card)[0]
    assert "--pc 0.5 0.3 0.6" in train_line and "--degrade" in train_line
    assert "--pc-range 0.35 0.65 0.15 0.45 0.45 0.8" in train_line
    assert "--detector-shape 72 72" in train_line
    words = train_line.split()[1:]  # the rebuild command parses, and sets the same shape
    from infra.app.cli import build_parser

    args = build_parser().parse_args(["--lake", "L", *words[2:]])
    assert args.detector_shape == [72, 72]
    assert not any(line.startswith("# the CLI has no flag") for line in rebuild_commands(card))


def test_a_run_started_from_a_package_trains_from_its_network(
    training_lake, calibrated_run, tmp_path
):
    """``init_from``: each worker starts from the package's backbone (here with a learning
    rate too small to move it, so the trained backbone is still the package's to float16
    rounding) and a new last layer; the run and its rebuild command record the package."""
    import torch

    from infra.app.cli import build_parser
    from infra.app.train_cli import _run_settings
    from train.initial_weights import backbone_state
    from train.runs.package import export_model, rebuild_commands

    folder = export_model(training_lake.url, {}, RUN, "seed-net", tmp_path)
    config = TASK.refine(
        epochs=1, steps_per_epoch=1, lr=1e-12, momentum=0.0, init_from=str(folder), seed=5
    )
    train_supervised(training_lake.url, {}, training_lake.train_ids, config, "from-pkg")
    lake = open_lake(training_lake.url)
    stored = json.loads(lake.get_run_file("from-pkg", "config.json"))
    assert stored["config"]["init_from"] == str(folder)
    trained = torch.load(io.BytesIO(Run(lake, "from-pkg").get_bytes("model.pt")))["model"]
    start = backbone_state(str(folder))
    for key in ("conv1.weight", "layer1.0.conv1.weight", "layer4.0.conv2.weight"):
        torch.testing.assert_close(trained[key], start[key], atol=1e-6, rtol=0)
    package_head = torch.load(folder / "model.pt")["model"]["fc.weight"].float()
    assert not torch.allclose(trained["fc.weight"], package_head, atol=1e-3)  # a new layer

    settings = {"arch": "resnet10", "epochs": 1, "init_from": "cubic-lab"}
    card = {
        "name": "m", "run_id": "r", "calibration": {"n_patterns": 10, "fit_materials": ["a"]},
        "training": {"settings": settings, "train_ids": ["a"], "test_ids": ["b"]},
    }  # fmt: skip
    words = rebuild_commands(card)[0].split()
    assert "--init-from" in words
    args = build_parser().parse_args(["--lake", "L", *words[3:]])
    args.cfg = None
    assert _run_settings(args, mcd=False)["init_from"] == "cubic-lab"


def test_a_package_that_cannot_start_a_run_is_one_line(tmp_path):
    """A missing name, another architecture and an MCD package are refused on the driver."""
    with pytest.raises(TrainingError) as refused:
        SupervisedConfig(init_from="no-such-model").validate()
    message = str(refused.value)
    assert "\n" not in message and message.startswith("training config init_from:")
    assert "cubic-lab" in message  # the shipped names are listed
    with pytest.raises(TrainingError, match="its network is 'resnet18', this run's is 'resnet10'"):
        SupervisedConfig(arch="resnet10", init_from="cubic-lab").validate()
    mcd = tmp_path / "mcd-pkg"
    mcd.mkdir()
    (mcd / "config.json").write_text(json.dumps({"kind": "mcd", "config": {"arch": "resnet50"}}))
    with pytest.raises(TrainingError, match="a mcd run; only a supervised package"):
        SupervisedConfig(init_from=str(mcd)).validate()


def test_the_shipped_cubic_backbone_loads_into_an_eleven_class_network():
    """The recipe experiment's case: cubic-lab's ResNet18 starting a Laue-class network."""
    import torch

    from train.initial_weights import backbone_state, load_backbone
    from train.models import build_classifier

    model = build_classifier(11, "resnet18")
    assert load_backbone(model, "cubic-lab") == len(backbone_state("cubic-lab"))
    start = backbone_state("cubic-lab")
    assert torch.equal(model.state_dict()["conv1.weight"], start["conv1.weight"])
    assert model.fc.out_features == 11
