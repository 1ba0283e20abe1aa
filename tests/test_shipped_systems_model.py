"""The shipped Laue-class model (``train/shipped_models/systems-lab``, issue 16), used as a lab
would: by name, with no lake, on kikuchipy's real Ni scan, on noise, and as the gate of the
cubic model. It is weak (Laue class about 2x chance on held-out materials; docs/RESULTS.md), so
what is checked here is that it says so: listed with its figures, and never confidently wrong
on real nickel."""

from __future__ import annotations

import argparse
import csv

import pytest
from real_ni import NI_FILES

from infra.app.cli import main
from train.runs.inference import load_model, package_card, stated_limits
from train.runs.out_of_class import noise_share
from train.shipped import shipped_model_names

SHIPPED = "systems-lab"
LAUE_CLASSES = ["-1", "-3", "-3m", "2/m", "4/m", "4/mmm", "6/m", "6/mmm", "m-3", "m-3m", "mmm"]


@pytest.fixture(scope="module")
def shipped():
    assert SHIPPED in shipped_model_names(), "the Laue-class model ships with the package"
    return load_model(SHIPPED)


def test_it_is_listed_beside_the_cubic_model_with_its_weak_figure(capsys):
    from infra.app.model_cli import ls_handler

    assert ls_handler(argparse.Namespace(lake=None, storage_options={})) == 0
    rows = capsys.readouterr().out.splitlines()
    line = next(row for row in rows if row.startswith(SHIPPED))
    assert "shipped" in line and "disordered_laue_class" in line
    accuracy = float(line.split("accuracy ")[1].split(" ")[0].rstrip(";"))
    assert 1 / 11 < accuracy < 0.5, "the card's held-out figure: above chance, far from usable"
    assert any(row.startswith("cubic-lab") for row in rows)


def test_it_predicts_the_eleven_laue_classes(shipped):
    assert [str(c) for c in shipped.classes] == LAUE_CLASSES
    assert shipped.reading.image_size == 64


@pytest.mark.parametrize("fmt", sorted(NI_FILES))
def test_real_nickel_is_never_called_confidently_another_laue_class(shipped, fmt):
    """Real fcc Ni is m-3m: a confident call is m-3m, anything else comes out uncertain
    (the second build called the EDAX copy confidently 4/m; that is what this guards)."""
    from train.runs.predict import predict_file

    prediction = predict_file(shipped, NI_FILES[fmt])
    top = prediction.probabilities.argmax(1)
    calls = [str(shipped.classes[k]) for k, v in zip(top, prediction.verdict, strict=True)
             if v == "confident"]  # fmt: skip
    assert all(call == "m-3m" for call in calls), calls


def test_noise_comes_out_uncertain(shipped):
    assert noise_share(shipped).uncertain == 1.0


def test_it_gates_the_cubic_model_by_name_with_no_lake(tmp_path, capsys):
    out = tmp_path / "gated"
    argv = ["--lake", str(tmp_path / "none"), "predict", "--model", "cubic-lab"]
    assert main([*argv, "--gate", SHIPPED, str(NI_FILES["h5ebsd"]), "--out", str(out)]) == 0
    said = capsys.readouterr()
    assert f"by gate {SHIPPED}" in said.out
    assert f"note: the gate {SHIPPED}'s card: " in said.err  # its limits, repeated
    assert "not a gate for real patterns yet" in said.err
    rows = list(csv.DictReader((out / "patterns.csv").open()))
    assert len(rows) == 9
    for row in rows:
        assert row["gate_call"] in LAUE_CLASSES
        if row["gate_call"] != "m-3m":
            assert row["verdict"] == "uncertain"
    assert not (tmp_path / "none").exists()


def test_a_card_s_limits_are_read_and_a_damaged_card_never_blocks_inference(shipped, tmp_path):
    """The limits ``predict`` repeats come from the card (the cubic model's: real Ni averaged
    within its grains is called Fd-3m), and an unreadable card gives none rather than an error."""
    assert shipped.limits and "uncertain" in shipped.limits
    cubic = load_model("cubic-lab").limits
    assert cubic and "Fd-3m" in cubic and "averag" in cubic
    (tmp_path / "card.json").write_text("{not json")
    assert package_card(tmp_path) == {} and stated_limits(package_card(tmp_path)) is None
    (tmp_path / "card.json").write_text('{"limits": {"use": "only for tests"}}')
    assert stated_limits(package_card(tmp_path)) == "only for tests"
