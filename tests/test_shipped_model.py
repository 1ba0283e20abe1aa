"""The shipped cubic model (``train/shipped_models/cubic-lab``), used as a lab would use it:
by name, with no lake, on EMsoft's simulated Ni pattern, on kikuchipy's real Ni scan in its
three formats, on noise and on a hexagonal phase it has no class for (simulated here with the
real engine).

Two of issue 13's criteria are met only in part by this model (real Ni called Fm-3m in each
format: 3 of 9 on the two files with a background, none on EDAX's; a hexagonal phase flagged
uncertain: 11 %): they are measured and recorded in docs/RESULTS.md and on the
issue, not marked as expected failures here; their tests land with the model that meets them."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from real_ni import KIKUCHIPY_DATA, NI_FILES

from infra.app.cli import main
from train.runs.inference import load_model
from train.runs.out_of_class import noise_share, out_of_class_shares
from train.shipped import shipped_model_names

pytest_plugins = ("training_fixtures",)

SHIPPED = "cubic-lab"
FM3M = 225


@pytest.fixture(scope="module")
def shipped():
    assert SHIPPED in shipped_model_names(), "the cubic model ships with the package"
    return load_model(SHIPPED)


def test_the_shipped_model_is_listed_with_its_card_figures(capsys):
    from infra.app.model_cli import ls_handler

    args = argparse.Namespace(lake=None, storage_options={})
    assert ls_handler(args) == 0
    line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith(SHIPPED))
    assert "shipped" in line and "Pm-3m Pm-3n Fm-3m Fd-3m Im-3m" in line
    assert "accuracy 0.9" in line and line.endswith("trained at 20 kV")


def test_emsofts_simulated_ni_pattern_is_called_fm3m(shipped):
    """Another simulator (EMsoft), another detector (480 x 640, PC from the file): Fm-3m."""
    from train.runs.predict import predict_file

    path = KIKUCHIPY_DATA / "emsoft_ebsd" / "EBSD_TEST_Ni.h5"
    prediction = predict_file(shipped, path)
    (top,) = prediction.probabilities.argmax(1)
    assert shipped.classes[top] == FM3M and prediction.probabilities.max() >= shipped.threshold


@pytest.mark.parametrize("fmt", sorted(NI_FILES))
def test_no_format_of_the_real_ni_scan_is_called_confidently_wrong(shipped, fmt):
    """kikuchipy's real Ni scan in its three formats: a confident call is Fm-3m, anything else
    comes out "uncertain". The EDAX copy has no static background (a smooth fit to the scan's
    mean stands in; its camera texture and screen dust stay); earlier models called all nine
    Pm-3m at p ~1 there, and the 20-epoch model two of the h5ebsd and NORDIF ones Im-3m."""
    from train.runs.predict import predict_file

    prediction = predict_file(shipped, NI_FILES[fmt])
    top = prediction.probabilities.argmax(1)
    confident = prediction.probabilities.max(1) >= shipped.threshold
    calls = [shipped.classes[k] for k, sure in zip(top, confident, strict=True) if sure]
    assert all(label == FM3M for label in calls), calls


@pytest.mark.parametrize("fmt", ["h5ebsd", "NORDIF"])
def test_files_with_their_background_get_fm3m_calls(shipped, fmt):
    """With the file's static background, some real Ni patterns are called Fm-3m confidently
    (3 of 9 with the lab-falloff build; the rest uncertain): the criterion met in part."""
    from train.runs.predict import predict_file

    prediction = predict_file(shipped, NI_FILES[fmt])
    confident = prediction.probabilities.max(1) >= shipped.threshold
    calls = prediction.probabilities.argmax(1)[confident]
    assert len(calls) >= 2 and all(shipped.classes[k] == FM3M for k in calls)


def test_a_blank_scan_point_is_uncertain_not_an_error(shipped):
    """EDAX's up2 file pads its last scan point with zeros: that pattern's image quality is 0
    (kikuchipy's formula would divide by its empty spectrum), and the network's confident-looking
    call on it (p ~0.9) comes out uncertain through the quality floor."""
    from train.runs.predict import predict_file

    path = KIKUCHIPY_DATA / "edax_binary" / "edax_binary.up2"
    prediction = predict_file(shipped, path)
    assert prediction.nav_shape == (10,)
    assert prediction.quality[-1] == 0 and (prediction.quality[:-1] > 0).all()
    assert prediction.confidence[-1] >= shipped.threshold, "the floor, not the network, decides"
    assert prediction.verdict[-1] == "uncertain"


def test_predict_by_name_needs_no_lake(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--lake", str(tmp_path / "none"), "predict", "--model", SHIPPED]
    assert main([*argv, str(NI_FILES["h5ebsd"]), "--out", str(out)]) == 0
    summary = capsys.readouterr().out
    assert "9 patterns; confident" in summary and "calibrated" in summary
    assert (out / "patterns.csv").is_file() and (out / "patterns_phase_map.png").is_file()
    assert not (tmp_path / "none").exists()


def test_noise_comes_out_uncertain(shipped):
    assert noise_share(shipped).uncertain == 1.0


@pytest.fixture(scope="module")
def mg_lake(tmp_path_factory, ray_two_cpus) -> tuple[str, str]:
    """(lake, material id) of bundled hexagonal Mg, simulated at the recipe's master settings
    in a scratch lake through the CLI (on a Ray runtime this module starts and shuts down, so
    later modules can start their own)."""
    from infra.app.recipes import recipe
    from ingest.noncubic import noncubic_cif
    from lake import Lake

    lake = str(tmp_path_factory.mktemp("mg") / "mg.zarr")
    assert main(["--lake", lake, "ingest", "cif", str(noncubic_cif("Mg"))]) == 0
    sim = recipe(SHIPPED).simulation
    argv = ["--lake", lake, "simulate", "--npx", str(sim.npx), "--dmin", str(sim.dmin_nm)]
    argv += ["--energies", "15:20:5", "--bethe", "4", "8", "50", "--mc-electrons", "20000"]
    assert main([*argv, "--precision", "single", "--device", "cpu", "--quiet"]) == 0
    (mg,) = Lake.open(lake, mode="r").structure_ids()
    return lake, mg


@pytest.fixture(scope="module")
def mg_share(shipped, mg_lake):
    """The shipped model on 60 patterns of the Mg lake."""
    lake, mg = mg_lake
    (share,) = out_of_class_shares(shipped, lake, {}, [mg], 60)
    return share


def test_held_out_patterns_can_be_rendered_as_the_model_trained_on_them(shipped, mg_lake):
    """Diagnostics (``scripts/feature_distance_check.py --degraded``) render simulations with
    the model's training degradations: the same orientations, but far from the clean render."""
    from train.runs.held_out import held_out_batches
    from train.supervised import SupervisedConfig

    lake, mg = mg_lake
    augment = SupervisedConfig(**shipped.settings).training_augment()
    assert augment is not None and augment.band_contrast_range is not None
    ((clean, _, _),) = held_out_batches(shipped, lake, {}, [mg], 8, 50_000)
    ((degraded, _, _),) = held_out_batches(shipped, lake, {}, [mg], 8, 50_000, augment)
    assert clean.shape == degraded.shape == (8, 1, 64, 64)
    r = [
        float(np.corrcoef(a.ravel(), b.ravel())[0, 1]) for a, b in zip(clean, degraded, strict=True)
    ]
    assert max(r) < 0.98 and min(r) > -0.5, r


def test_an_out_of_class_phase_is_scored_as_such(mg_share):
    assert mg_share.label == 194 and mg_share.patterns == 60
    confident = sum(mg_share.calls.values())
    assert confident == round((1 - mg_share.uncertain) * 60)
    assert set(mg_share.calls) <= {"221", "223", "225", "227", "229"}
