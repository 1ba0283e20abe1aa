"""The supervised run's learning-rate schedule: the paper's StepLR or a cosine to zero."""

from __future__ import annotations

import pytest
import torch

from train.errors import TrainingError
from train.supervised import SupervisedConfig, lr_scheduler


def _rates(config: SupervisedConfig) -> list[float]:
    """The learning rate of each epoch, as the worker loop steps the schedule."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr)
    scheduler = lr_scheduler(optimizer, config)
    rates = []
    for _ in range(config.epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_cosine_falls_from_lr_to_near_zero_over_the_epochs():
    rates = _rates(SupervisedConfig(lr=0.01, epochs=20, lr_schedule="cosine"))
    assert rates[0] == pytest.approx(0.01)
    assert all(later < earlier for earlier, later in zip(rates, rates[1:], strict=False))
    assert rates[10] == pytest.approx(0.005, rel=1e-6)  # half way: half the rate
    assert rates[-1] < 0.0001  # the last epoch refines at under 1 % of lr


def test_step_is_still_the_papers_default():
    config = SupervisedConfig(lr=0.01, epochs=15)
    assert config.lr_schedule == "step"
    rates = _rates(config)
    assert rates[6] == pytest.approx(0.01) and rates[7] == pytest.approx(0.009)
    assert rates[14] == pytest.approx(0.0081)


def test_an_unknown_schedule_is_one_line_naming_the_field():
    with pytest.raises(TrainingError) as refused:
        SupervisedConfig(lr_schedule="linear").validate()
    assert str(refused.value) == ("training config lr_schedule='linear': use one of step, cosine")


def test_the_flag_and_the_config_key_set_it_and_the_rebuild_command_keeps_it(tmp_path):
    from infra.app.cli import build_parser
    from infra.app.train_cli import _run_settings
    from infra.config import load_config
    from train.runs.package import rebuild_commands

    path = tmp_path / "ebsdlake.toml"
    path.write_text('[train]\nlr_schedule = "cosine"\n')
    args = build_parser().parse_args(["train"])
    args.cfg = load_config(path, environ={})
    assert _run_settings(args, mcd=False)["lr_schedule"] == "cosine"
    args = build_parser().parse_args(["train", "--lr-schedule", "step"])
    args.cfg = load_config(path, environ={})
    assert _run_settings(args, mcd=False)["lr_schedule"] == "step"  # the flag beats the file
    args = build_parser().parse_args(["train", "--mcd", "--lr-schedule", "cosine"])
    args.cfg = load_config(path, environ={})
    with pytest.raises(TrainingError, match="only supervised runs have a schedule"):
        _run_settings(args, mcd=True)

    card = {
        "name": "m", "run_id": "r", "calibration": {"n_patterns": 10, "fit_materials": ["a"]},
        "training": {"settings": {"lr_schedule": "cosine", "epochs": 20},
                     "train_ids": ["a"], "test_ids": ["b"]},
    }  # fmt: skip
    train_line = rebuild_commands(card)[0]
    assert "--lr-schedule cosine" in train_line
    words = train_line.split()[1:]
    assert build_parser().parse_args(["--lake", "L", *words[2:]]).lr_schedule == "cosine"
