"""scripts/blur_tolerance.py: a model scored on held-out masters (a real lake of dynamical
masters) with its inputs blurred; unblurred it is the model's own evaluation."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from training_fixtures import training_lake, training_masters  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from blur_tolerance import blurred_input, main, score_blurred  # noqa: E402


def lag1(images: torch.Tensor) -> float:
    """Correlation of horizontally neighbouring pixels over all images."""
    a, b = images[..., 1:].numpy().ravel(), images[..., :-1].numpy().ravel()
    return float(np.corrcoef(a, b)[0, 1])


def test_blur_smooths_and_keeps_the_network_s_scaling():
    patterns = torch.randn(3, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    assert blurred_input(patterns, 0) is patterns
    smooth = blurred_input(patterns, 1.5)
    assert smooth.shape == patterns.shape
    assert lag1(smooth) > lag1(patterns) + 0.5
    assert smooth.mean(dim=(-2, -1)).abs().max() < 1e-5
    assert torch.allclose(smooth.std(dim=(-2, -1)), torch.ones(3, 1), atol=1e-5)


def test_unblurred_is_the_evaluation_and_each_sigma_scores_every_pattern(training_lake):  # noqa: F811
    from train.runs.held_out import score_materials
    from train.runs.inference import load_model

    model = load_model("cubic-lab")
    ids = training_lake.test_ids
    found = score_blurred(model, training_lake.url, ids, 4, [0, 3])
    plain = score_materials(model, training_lake.url, {}, ids, 4)
    assert found["0"]["accuracy"] == pytest.approx(plain["accuracy"])
    assert found["0"]["per_class"] == pytest.approx(plain["per_class"])
    assert found["3"]["n_patterns"] == found["0"]["n_patterns"] == 4 * len(ids)


def test_a_bad_model_or_sigma_is_one_line(tmp_path, capsys):
    out = str(tmp_path / "b.json")
    assert main(["--model", "nope", "--lake", str(tmp_path / "l"), "--out", out]) == 2
    assert main(["--lake", str(tmp_path / "l"), "--out", out, "--sigma", "-1"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "nope" in err[0] and "--sigma -1" in err[1]
