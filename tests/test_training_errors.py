"""User errors of ``train``, ``evaluate``, ``predict`` and ``lake show --patterns``: one line,
no traceback, and found before Ray starts, a lake is created, or a finished run is touched.

Runs that already exist are written here as ``train_supervised`` leaves them (``config.json``
from ``supervised_run_config``, ``classes.json``, ``metrics.json`` and a real, untrained
ResNet's ``model.pt``), so only one test needs Ray Train: an interrupted run resumed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_checks import one_line_error
from run_fixtures import TINY, stored_run, supervised_run_config

from infra.app.cli import main
from train.errors import TrainingError
from train.patterns.errors import PatternError
from train.runs.run import (
    CLASSES_FILE,
    CONFIG_FILE,
    MODEL_FILE,
    Run,
    open_lake,
)

pytest_plugins = ("training_fixtures",)  # session fixtures: one tiny lake per run

TINY_FLAGS = [
    "--model", "resnet10", "--epochs", "1", "--image-size", "32", "--batch-size", "8",
    "--steps-per-epoch", "2", "--patterns-per-material", "4", "--folds", "1",
]  # fmt: skip


def _stored_run(lake_url, run_id, config=TINY, train_ids=(), test_ids=(), finished=True):
    """A stored run folder (``run_fixtures.stored_run``); returns its lake."""
    return stored_run(lake_url, run_id, config, train_ids, test_ids, finished).lake


def _refused(argv, capsys) -> str:
    """Run the CLI, expect exit code 2 with one stderr line and no Ray started; return the
    line."""
    import ray

    ray_before = ray.is_initialized()
    line = one_line_error(capsys, argv)
    if not ray_before:
        assert not ray.is_initialized(), "Ray was started for a command that was refused"
    return line


# 1. reusing --run-id ------------------------------------------------------------------------


def test_train_refuses_a_finished_run_id_and_leaves_it_intact(training_lake, capsys):
    lake = _stored_run(training_lake.url, "err-done", TINY, training_lake.train_ids)
    before = {name: lake.get_run_file("err-done", name) for name in (CONFIG_FILE, CLASSES_FILE)}
    line = _refused(
        ["--lake", training_lake.url, "train", "--run-id", "err-done", "--label", "spacegroup",
         *TINY_FLAGS],
        capsys,
    )  # fmt: skip
    assert f"run 'err-done' already exists in {lake.url}" in line
    assert "choose another --run-id or remove it" in line
    after = {name: lake.get_run_file("err-done", name) for name in (CONFIG_FILE, CLASSES_FILE)}
    assert after == before


def test_unfinished_run_with_other_settings_is_refused_naming_them(training_lake, capsys):
    train_ids = [m for m in sorted(training_lake.material_ids) if m not in training_lake.test_ids]
    lake = _stored_run(
        training_lake.url, "err-half", TINY, train_ids, training_lake.test_ids, finished=False
    )
    before = lake.get_run_file("err-half", CONFIG_FILE)
    line = _refused(
        ["--lake", training_lake.url, "train", "--run-id", "err-half", *TINY_FLAGS,
         "--lr", "0.1", "--test-ids", *training_lake.test_ids],
        capsys,
    )  # fmt: skip
    assert "run 'err-half' exists unfinished" in line
    assert "config.lr 0.01 -> 0.1" in line
    assert lake.get_run_file("err-half", CONFIG_FILE) == before


def test_unfinished_run_with_the_same_settings_may_resume(training_lake):
    from train.runs.kfold import plan_protocol

    train_ids = [m for m in sorted(training_lake.material_ids) if m not in training_lake.test_ids]
    lake = _stored_run(
        training_lake.url, "err-same", TINY, train_ids, training_lake.test_ids, finished=False
    )
    plan = plan_protocol(lake, TINY, "err-same", folds=1, test_ids=training_lake.test_ids)
    assert plan.train_ids == train_ids and plan.folds == []
    wanted = supervised_run_config(TINY, training_lake.url, train_ids, None, training_lake.test_ids)
    assert Run(lake, "err-same").check_settings(wanted, [225, 227, 229]) == "unfinished"
    with pytest.raises(TrainingError, match="classes"):
        Run(lake, "err-same").check_settings(wanted, [225, 229])


def test_finished_mcd_ensemble_is_refused(training_lake, nickel_scan_file):
    from train.mcd import MCDConfig
    from train.models import build_mcd_networks
    from train.runs.mcd_ensemble import check_ensemble, mcd_run_config

    config = MCDConfig(arch="resnet10", image_size=32, detector_shape=(32, 32), top_n=3)
    lake = open_lake(training_lake.url, {}, mode="a")
    sources = training_lake.train_ids
    for k in range(2):
        run_id = f"err-mcd-r{k:02d}"
        member = config.refine(seed=config.seed + k)
        run = Run(lake, run_id)
        run.put_json(CONFIG_FILE, mcd_run_config(member, lake.url, sources, [nickel_scan_file]))
        run.put_json(CLASSES_FILE, [225, 227, 229])
        nets = build_mcd_networks(3, "resnet10")
        run.put_model({k: m.state_dict() for k, m in nets.modules().items()})
    with pytest.raises(TrainingError, match="run 'err-mcd' already exists"):
        check_ensemble(lake, "err-mcd", 2, config, sources, [nickel_scan_file])
    with pytest.raises(TrainingError, match=r"config.lr 0.0002 -> 0.001"):
        check_ensemble(lake, "err-mcd", 3, config.refine(lr=1e-3), sources, [nickel_scan_file])
    check_ensemble(lake, "err-mcd", 3, config, sources, [nickel_scan_file])  # r02 is new


def test_interrupted_run_resumes_with_the_same_settings(training_lake, ray_two_cpus, tmp_path):
    """A run whose worker died (no retries) is trained again with the same settings: it goes
    on from its last checkpoint instead of starting over."""
    from train.errors import TrainingRunError
    from train.runs.training import train_supervised

    marker = tmp_path / "killed.txt"
    config = TINY.refine(
        epochs=2, max_failures=0,
        fault={"rank": 0, "epoch": 1, "step": 0, "marker": str(marker), "delay_s": 3.0},
    )  # fmt: skip
    with pytest.raises(TrainingRunError, match="run 'err-resume': Ray Train failed: rank 0: "):
        train_supervised(training_lake.url, {}, training_lake.train_ids, config, "err-resume")
    assert marker.exists()
    lake = open_lake(training_lake.url)
    assert MODEL_FILE not in _listing(lake, "err-resume")
    result = train_supervised(
        training_lake.url, {}, training_lake.train_ids, config.refine(max_failures=2),
        "err-resume",
    )  # fmt: skip
    assert [h["epoch"] for h in result.history] == [0, 1]
    assert result.history[-1]["resumed_from_epoch"] == 1
    with pytest.raises(TrainingError, match="already exists"):
        train_supervised(training_lake.url, {}, training_lake.train_ids, config, "err-resume",
                         reuse_finished=False)  # fmt: skip


def _listing(lake, run_id: str) -> list[str]:
    return [p.name for p in Path(lake.run_location(run_id)[0]).iterdir()]


# 2. settings checked before Ray ------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--model", "resnet99"], "arch='resnet99': unknown; choose one of resnet10"),
        (["--steps-per-epoch", "-1"], "steps_per_epoch=-1: must be >= 1"),
        (["--batch-size", "0"], "batch_size=0: must be >= 1"),
        (["--workers", "0"], "num_workers=0: must be >= 1"),
        (["--holdout-fraction", "2"], "--holdout-fraction 2.0: must be in [0, 1)"),
        (["--folds", "-3"], "--folds -3: must be >= 1"),
        (["--weights", "/nonexistent/w.pth"], "weights_path=/nonexistent/w.pth: no such file"),
        (["--degrade", "dim"], "degrade='dim': true, false or one of lab, lab-dim"),
        (["--mcd"], "give the target patterns with --target"),
        (["--mcd", "--target", "x.h5", "--runs", "0"], "--runs 0: must be >= 1"),
    ],
)
def test_bad_training_settings_are_refused_before_ray(training_lake, capsys, flags, expected):
    line = _refused(["--lake", training_lake.url, "train", "--run-id", "err-x", *flags], capsys)
    assert expected in line


def test_worker_failure_reason_is_the_workers_own_message():
    from ray.train import ControllerError, WorkerGroupError

    from train.launch import failure_reason

    snippet = "[Rank 0 Error Snippet]:\nTraceback (most recent call last):\n  ...\nboom"
    error = WorkerGroupError(
        snippet,
        {1: RuntimeError("size mismatch\n\tfor fc.weight"), 0: TrainingError("label 'x': bad")},
    )
    assert str(error).splitlines()[0] == "Training failed due to worker errors:"
    assert failure_reason(error) == "rank 0: label 'x': bad"
    error = WorkerGroupError(snippet, {1: RuntimeError("size mismatch\n\tfor fc.weight")})
    assert failure_reason(error) == "rank 1: RuntimeError: size mismatch for fc.weight"
    assert failure_reason(ControllerError(ValueError("no GPU"))) == "ValueError: no GPU"


# 3. held-out ids ---------------------------------------------------------------------------


def test_unknown_test_id_is_refused_before_training(training_lake, capsys):
    line = _refused(
        ["--lake", training_lake.url, "train", *TINY_FLAGS, "--test-ids", "t-ag", "t-agg"], capsys
    )
    assert f"--test-ids: no material 't-agg' in {open_lake(training_lake.url).url}" in line


def test_test_id_without_a_master_of_the_variants_is_refused(training_lake, capsys):
    line = _refused(
        ["--lake", training_lake.url, "train", *TINY_FLAGS, "--variants", "b01",
         "--test-ids", "t-ag"],
        capsys,
    )  # fmt: skip
    assert "--test-ids: 't-ag' has no complete master among variants ['b01']" in line


def test_evaluating_on_a_training_material_warns(training_lake, capsys):
    lake = _stored_run(training_lake.url, "err-eval", TINY, ["t-cu", "t-fe", "t-si"], ["t-ag"])
    code = main(["--lake", training_lake.url, "evaluate", "err-eval", "--test-ids", "t-cu",
                 "t-ag", "--patterns-per-material", "2"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "warning: run 'err-eval' was trained on t-cu;" in err[0]
    assert "not a held-out score" in err[0]
    assert "err-eval: accuracy" in captured.out
    (name,) = [n for n in captured.out.split() if n.startswith("evaluation-ids-")]  # not its own
    stored = json.loads(lake.get_run_file("err-eval", name.rstrip(",")))  # written to the lake
    assert stored["n_patterns"] == 4 and stored["seen_in_training"] == ["t-cu"]


# 4. predict --------------------------------------------------------------------------------


def _image_folder(folder: Path, sizes=((60, 60),) * 3) -> Path:
    import kikuchipy as kp
    from PIL import Image

    folder.mkdir()
    patterns = kp.data.nickel_ebsd_small().data.reshape(-1, 60, 60)
    for i, size in enumerate(sizes):
        Image.fromarray(patterns[i][: size[0], : size[1]]).save(folder / f"p{i}.png")
    return folder


def test_predict_writes_good_inputs_when_another_fails(training_lake, tmp_path, capsys):
    _stored_run(training_lake.url, "err-predict", TINY, training_lake.train_ids)
    good = _image_folder(tmp_path / "good")
    bad = tmp_path / "bad.cif"
    bad.write_text("data_x\n_cell_length_a 4.0\n")
    out = tmp_path / "out"
    line = _refused(
        ["--lake", training_lake.url, "predict", "err-predict", str(bad), str(good),
         "--out", str(out)], capsys,
    )  # fmt: skip
    assert "1 of 2 inputs not predicted (the other 1 are written)" in line
    assert f"patterns {bad}: not a readable EBSD file" in line
    rows = (out / "good.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 and rows[0].startswith("index,row,col,predicted,symbol,prob")


def test_predict_names_a_non_image_png(training_lake, tmp_path, capsys):
    _stored_run(training_lake.url, "err-predict2", TINY, training_lake.train_ids)
    folder = _image_folder(tmp_path / "images")
    (folder / "notes.png").write_text("not an image")
    line = _refused(["--lake", training_lake.url, "predict", "err-predict2", str(folder),
                     "--out", str(tmp_path / "out")], capsys)  # fmt: skip
    assert f"patterns {folder / 'notes.png'}: not a readable image" in line


def test_predict_refuses_an_out_path_that_is_a_file(training_lake, tmp_path, capsys):
    folder = _image_folder(tmp_path / "images")
    out = tmp_path / "taken"
    out.write_text("keep me")
    line = _refused(["--lake", training_lake.url, "predict", "err-predict", str(folder),
                     "--out", str(out)], capsys)  # fmt: skip
    assert f"--out {out}: {out} is a file, not a folder" in line
    assert out.read_text() == "keep me"


def test_predict_refuses_tiny_patterns(tmp_path):
    from train.patterns.experimental import read_patterns

    folder = _image_folder(tmp_path / "images", sizes=[(1, 1)])
    with pytest.raises(PatternError, match=r"p0.png: 1x1 px patterns are too small"):
        read_patterns(folder)


# 5. corrupt run files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        (CONFIG_FILE, b"[]", "run 'err-bad': config.json is not a JSON object"),
        (CONFIG_FILE, b'{"kind": "supervised"}', "run 'err-bad': config.json lacks 'config'"),
        (CONFIG_FILE, b"{not json", "run 'err-bad': config.json is not valid JSON (Expecting"),
        (CLASSES_FILE, b"[225, ", "run 'err-bad': classes.json is not valid JSON ("),
        (MODEL_FILE, None, "run 'err-bad': model.pt is unreadable ("),
    ],
)
def test_corrupt_run_files_name_the_run_and_file(training_lake, capsys, name, data, expected):
    lake = _stored_run(training_lake.url, "err-bad", TINY, training_lake.train_ids)
    if data is None:  # a truncated model.pt
        data = lake.get_run_file("err-bad", MODEL_FILE)[:1000]
    lake.put_run_file("err-bad", name, data)
    line = _refused(["--lake", training_lake.url, "evaluate", "err-bad", "--test-ids", "t-ag"],
                    capsys)  # fmt: skip
    assert expected in line


# 6. smaller checks -------------------------------------------------------------------------


def test_evaluate_checks_patterns_per_material_and_ensemble_runs(training_lake, capsys):
    _stored_run(training_lake.url, "err-sup", TINY, training_lake.train_ids, ["t-ag"])
    url = training_lake.url
    line = _refused(["--lake", url, "evaluate", "err-sup", "--patterns-per-material", "0"], capsys)
    assert "--patterns-per-material 0: must be >= 1" in line
    line = _refused(["--lake", url, "evaluate", "err-sup", "--ensemble"], capsys)
    assert "run 'err-sup' is a supervised run, not an MCD ensemble run" in line
    line = _refused(["--lake", url, "evaluate", "err-none", "--ensemble"], capsys)
    assert f"run 'err-none' does not exist in {open_lake(url).url}" in line


def test_lake_show_patterns_must_be_positive(training_lake, capsys):
    """Refused by the parser, before the material table prints; the library call refuses too."""
    from train.patterns.figures import pattern_grid

    with pytest.raises(SystemExit) as exited:
        main(["--lake", training_lake.url, "lake", "show", "t-cu", "--patterns", "-2"])
    captured = capsys.readouterr()
    assert exited.value.code == 2 and captured.out == ""
    assert (
        captured.err.strip().splitlines()[-1].endswith("--patterns: -2 patterns: must be 0 or more")
    )
    with pytest.raises(PatternError, match=r"--patterns -2: must be >= 1"):
        pattern_grid(training_lake.url, {}, ["t-cu"], -2, Path("unused.png"))


def test_corrupt_master_chunk_is_named_with_a_hint(training_masters, tmp_path, capsys):
    from training_fixtures import fill_lake

    lake_url = str(tmp_path / "lake")
    masters = {key: value for key, value in training_masters.items() if key[0] == "t-cu"}
    fill_lake(lake_url, {}, masters)
    chunks = sorted((tmp_path / "lake" / "masters" / "t-cu" / "default" / "master").rglob("c*"))
    chunk = next(p for p in chunks if p.is_file())
    chunk.write_bytes(np.random.default_rng(0).bytes(chunk.stat().st_size))
    line = _refused(["--lake", lake_url, "lake", "show", "t-cu", "--patterns", "2",
                     "--out", str(tmp_path / "grid.png")], capsys)  # fmt: skip
    assert "masters/t-cu/default/master/c." in line  # the material, variant and chunk
    assert "ebsdlake lake verify" in line


# 7. a mistyped lake URL --------------------------------------------------------------------


def test_a_mistyped_lake_is_not_created(tmp_path, capsys):
    typo = tmp_path / "x" / "typo"
    line = _refused(["--lake", str(typo), "train", *TINY_FLAGS], capsys)
    assert "no lake here" in line
    line = _refused(["--lake", str(typo), "evaluate", "nosuchrun"], capsys)
    assert "no lake here" in line
    assert not typo.exists()


# 8. [train] keys of the config file --------------------------------------------------------


def _train_args(tmp_path, toml: str, *flags: str):
    from infra.app.cli import build_parser
    from infra.config import load_config

    path = tmp_path / "ebsdlake.toml"
    path.write_text(toml)
    args = build_parser().parse_args(["train", *flags])
    args.cfg = load_config(path, environ={})
    return args


def test_train_takes_every_train_key_of_the_config(tmp_path):
    from infra.app.train_cli import _run_settings

    toml = (
        '[train]\nlabel = "spacegroup"\nmodel = "resnet34"\nepochs = 3\nbatch_size = 16\n'
        "lr = 0.05\nmomentum = 0.5\nlr_step_epochs = 2\nlr_gamma = 0.5\nimage_size = 64\n"
        "num_workers = 2\nuse_gpu = true\nfolds = 3\n"
    )
    settings = _run_settings(_train_args(tmp_path, toml), mcd=False)
    assert settings == {
        **settings,
        "label": "spacegroup", "arch": "resnet34", "epochs": 3, "batch_size": 16, "lr": 0.05,
        "momentum": 0.5, "lr_step_epochs": 2, "lr_gamma": 0.5, "image_size": 64,
        "num_workers": 2, "use_gpu": True,
    }  # fmt: skip
    flagged = _run_settings(_train_args(tmp_path, toml, "--batch-size", "8", "--lr", "0.1"), False)
    assert flagged["batch_size"] == 8 and flagged["lr"] == 0.1  # a flag beats the config
    # MCD keeps its paper defaults (ResNet50, lr 2e-4) unless the file sets the key
    mcd = _run_settings(_train_args(tmp_path, "[train]\nepochs = 4\n", "--mcd"), mcd=True)
    assert mcd["epochs"] == 4 and "arch" not in mcd and "lr" not in mcd
    # the embedded default label is an attribute key; runs record the target name
    default = _run_settings(_train_args(tmp_path, ""), mcd=False)
    assert default["label"] == "disordered_spacegroup" and default["batch_size"] == 128


def test_train_key_of_the_config_file_is_in_force(training_lake, tmp_path, capsys):
    path = tmp_path / "team.toml"
    path.write_text('[train]\nmodel = "resnet99"\n')
    line = _refused(["--config", str(path), "--lake", training_lake.url, "train"], capsys)
    assert "arch='resnet99': unknown" in line
    path.write_text("[train]\nimage_size = 8\n")
    line = _refused(["--config", str(path), "--lake", training_lake.url, "train"], capsys)
    assert "image_size=8: must be >= 16" in line
    path.write_text("[train]\nfolds = 0\n")
    line = _refused(["--config", str(path), "--lake", training_lake.url, "train"], capsys)
    assert "--folds 0: must be >= 1" in line
