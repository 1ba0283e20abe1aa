"""``cpu_threads``, the run's torch threads per worker: refused with one line when it is not a
whole number >= 1, set by ``train --cpu-threads`` and ``model build --cpu-threads``, and kept in
the commands a model card records, so a model trained on 2 threads rebuilds on 2."""

from __future__ import annotations

import pytest

from train.errors import TrainingError
from train.supervised import SupervisedConfig


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_a_bad_thread_count_is_one_line_naming_the_field(bad):
    with pytest.raises(TrainingError) as refused:
        SupervisedConfig(cpu_threads=bad).validate()
    message = str(refused.value)
    assert message.startswith(f"training config cpu_threads={bad!r}: must be a whole number")
    assert "\n" not in message


def test_none_and_whole_numbers_are_accepted():
    SupervisedConfig().validate()
    SupervisedConfig(cpu_threads=2).validate()
    assert SupervisedConfig().cpu_threads is None  # the worker's Ray CPUs


def test_the_train_flag_sets_it_and_the_card_s_train_command_keeps_it():
    from infra.app.cli import build_parser
    from infra.app.train_cli import _run_settings
    from train.runs.package import rebuild_commands

    args = build_parser().parse_args(["train", "--cpu-threads", "2"])
    args.cfg = None
    assert _run_settings(args, mcd=False)["cpu_threads"] == 2
    args = build_parser().parse_args(["train"])
    args.cfg = None
    assert "cpu_threads" not in _run_settings(args, mcd=False)  # the config's default, None

    card = {
        "name": "m", "run_id": "r", "calibration": {"n_patterns": 10, "fit_materials": ["a"]},
        "training": {"settings": {"cpu_threads": 2, "epochs": 3},
                     "train_ids": ["a"], "test_ids": ["b"]},
    }  # fmt: skip
    words = rebuild_commands(card)[0].split()[1:]
    assert build_parser().parse_args(["--lake", "L", *words[2:]]).cpu_threads == 2


def test_the_config_key_sets_it_and_the_flag_beats_it(tmp_path):
    from infra.app.cli import build_parser
    from infra.app.train_cli import _run_settings
    from infra.config import ConfigError, load_config

    path = tmp_path / "ebsdlake.toml"
    path.write_text("[train]\ncpu_threads = 2\n")
    args = build_parser().parse_args(["train"])
    args.cfg = load_config(path, environ={})
    assert _run_settings(args, mcd=False)["cpu_threads"] == 2
    assert _run_settings(args, mcd=True)["cpu_threads"] == 2  # set in the file: MCD takes it
    args = build_parser().parse_args(["train", "--cpu-threads", "1"])
    args.cfg = load_config(path, environ={})
    assert _run_settings(args, mcd=False)["cpu_threads"] == 1
    path.write_text('[train]\ncpu_threads = "two"\n')
    with pytest.raises(ConfigError, match="cpu_threads"):
        load_config(path, environ={})


def test_model_build_records_every_flag_that_changes_the_model():
    from infra.app.cli import build_parser
    from infra.app.model_cli import rebuild_command

    plain = build_parser().parse_args(["model", "build", "cubic-lab"])
    assert rebuild_command(plain) == "ebsdlake --lake LAKE model build cubic-lab"
    words = ["model", "build", "systems-lab", "--scale", "2", "--workers", "4", "--gpu"]
    scaled = build_parser().parse_args([*words, "--cpu-threads", "2"])
    command = rebuild_command(scaled)
    assert command == (
        "ebsdlake --lake LAKE model build systems-lab --scale 2 --workers 4 --gpu --cpu-threads 2"
    )
    again = build_parser().parse_args(["--lake", "L", *command.split()[3:]])
    assert (again.scale, again.workers, again.gpu, again.cpu_threads) == (2, 4, True, 2)


def test_the_demo_trains_on_both_cores_and_the_shipped_recipe_on_one():
    from infra.app.demo import DemoSettings
    from infra.app.recipes import recipe

    assert DemoSettings().recipe().training.cpu_threads == 2
    assert recipe("cubic-lab").training.cpu_threads is None  # its shipped weights: 1 thread
