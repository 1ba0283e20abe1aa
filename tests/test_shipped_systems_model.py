"""The shipped Laue-class model (``train/shipped_models/systems-lab``), used as a lab would:
by name with no lake, on kikuchipy's real Ni scan, on EMsoft's simulated Ni pattern and on
noise; and as the gate of the cubic model."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import kikuchipy
import pytest

from lake.laue_classes import LAUE_CLASS_SYSTEM
from train.runs.inference import SHIPPED_MODELS, load_model, shipped_model_names
from train.runs.out_of_class import noise_share

SHIPPED = "systems-lab"
DATA = Path(kikuchipy.__file__).parent / "data"
NI_FILES = {
    "h5ebsd": DATA / "kikuchipy_h5ebsd" / "patterns.h5",
    "NORDIF": DATA / "nordif" / "Pattern.dat",
    "EDAX": DATA / "edax_h5ebsd" / "patterns.h5",
}


@pytest.fixture(scope="module")
def shipped():
    assert SHIPPED in shipped_model_names(), "the Laue-class model ships with the package"
    return load_model(SHIPPED)


@pytest.fixture(scope="module")
def card():
    return json.loads((SHIPPED_MODELS / SHIPPED / "card.json").read_text())


def test_listed_with_its_eleven_laue_classes(capsys):
    from infra.app.model_cli import ls_handler

    assert ls_handler(argparse.Namespace(lake=None, storage_options={})) == 0
    line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith(SHIPPED))
    assert "shipped" in line and "m-3m" in line and "6/mmm" in line and "-1" in line


def test_card_holds_the_unseen_groups_crystal_systems_and_costs(card):
    assert sorted(card["classes"]) == sorted(LAUE_CLASS_SYSTEM)
    assert card["label"] == "disordered_laue_class"
    extra = card["extra_evaluations"]
    unseen = extra["unseen_groups"]
    assert unseen["n_materials"] >= 30 and card["unseen_space_groups"]
    trained = set(card["training"]["train_ids"])
    assert not trained & set(unseen["per_material"]), "unseen groups were never trained on"
    assert extra["held_out_crystal_system"]["held_out"] >= card["accuracy"]["held_out"]
    costs = {row["crystal_system"] for row in card["build"]["seconds_per_master"]}
    assert costs == set(LAUE_CLASS_SYSTEM.values())
    assert card["build"]["total_minutes"] <= 120, "the recipe fits the 2-hour, 2-core budget"


def test_noise_comes_out_uncertain(shipped):
    assert noise_share(shipped).uncertain == 1.0


def test_emsofts_simulated_ni_is_cubic(shipped):
    from train.runs.predict import predict_file

    prediction = predict_file(shipped, DATA / "emsoft_ebsd" / "EBSD_TEST_Ni.h5")
    assert prediction.predicted == ["m-3m"]


@pytest.mark.parametrize("fmt", sorted(NI_FILES))
def test_real_ni_is_called_cubic_m3m(shipped, fmt):
    """kikuchipy's real Ni scan (fcc, Laue class m-3m): the most frequent call is m-3m."""
    from train.runs.predict import predict_file

    prediction = predict_file(shipped, NI_FILES[fmt])
    calls = Counter(prediction.predicted)
    assert calls.most_common(1)[0][0] == "m-3m", dict(calls)
