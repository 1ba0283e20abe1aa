"""scripts/voltage_tolerance.py: masters at another beam energy sit beside the recipe's, and a
model is scored on them through the same held-out stream (real engine, Ray, Zarr lake)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

pytest_plugins = ("training_fixtures",)

TINY_MASTERS = dict(npx=16, dmin_nm=0.15, energy_min_kev=15.0, energy_step_kev=5.0,
                    bethe_strong=4.0, bethe_weak=8.0, bethe_cutoff=50.0, mc_electrons=2_000,
                    precision="single", device="cpu")  # fmt: skip
"""Masters a test makes in seconds, with the recipes' two energy bins (the script uses the
model's recipe's settings)."""


@pytest.fixture(scope="module")
def nickel_at_two_energies(tmp_path_factory, ray_two_cpus) -> tuple[str, str]:
    """(lake, id) of bundled Ni with masters at 20 keV (``default``) and 30 keV (``kv30``)."""
    from voltage_tolerance import simulate_at

    from ingest.prototypes import load_prototypes
    from ingest.writer import IngestReport, ingest
    from lake import Lake
    from simulate.settings import SimulationSettings

    url = str(tmp_path_factory.mktemp("kv") / "lake.zarr")
    lake = Lake.open(url, create=True)
    report = IngestReport()
    ingest(lake, load_prototypes(("Ni",), on_reject=report.reject), report)
    (nickel,) = lake.structure_ids()
    settings = SimulationSettings(**TINY_MASTERS)
    for kv in (20.0, 30.0):
        simulate_at(url, settings, kv, [nickel], seed=0)
    return url, nickel


def test_each_beam_energy_is_its_own_variant_with_its_own_planes(nickel_at_two_energies):
    from voltage_tolerance import variant_for

    from lake import Lake

    url, nickel = nickel_at_two_energies
    lake = Lake.open(url, mode="r")
    assert variant_for(20.0, 20.0) == "default" and variant_for(30.0, 20.0) == "kv30"
    assert sorted(lake.variants(nickel)) == ["default", "kv30"]
    assert lake.master_attrs(nickel, "default")["energies_kev"] == [15.0, 20.0]
    attrs = lake.master_attrs(nickel, "kv30")
    assert attrs["energies_kev"] == [25.0, 30.0] and attrs["voltage_kv"] == 30.0


def test_the_model_reads_the_named_variant_at_the_same_orientations(nickel_at_two_energies):
    """``held_out_batches(variants=...)`` renders the other energy's master, not the run's
    ``default``: same orientations (same seed), narrower bands, so the images differ but stay
    alike; and the script scores every pattern it asked for."""
    from voltage_tolerance import score_at

    from train.runs.held_out import held_out_batches
    from train.runs.inference import load_model

    url, nickel = nickel_at_two_energies
    model = load_model("cubic-lab")
    ((at_20, labels, _),) = held_out_batches(model, url, {}, [nickel], 6, 7)
    ((again, _, _),) = held_out_batches(model, url, {}, [nickel], 6, 7, variants=("default",))
    ((at_30, _, _),) = held_out_batches(model, url, {}, [nickel], 6, 7, variants=("kv30",))
    assert labels == [225] * 6
    assert np.array_equal(at_20.numpy(), again.numpy())
    r = [float(np.corrcoef(a.ravel(), b.ravel())[0, 1]) for a, b in zip(at_20, at_30, strict=True)]
    assert min(r) > 0.3 and max(r) < 0.995, r
    scored = score_at(model, url, [nickel], 6, "kv30")
    assert scored["n_patterns"] == 6 and set(scored["per_class"]) == {"225"}
    assert 0.0 <= scored["accuracy"] <= 1.0


def test_another_beam_energy_moves_the_energy_bins_with_it():
    """``at_voltage`` keeps the bins where they sit relative to the beam, names its variant,
    and refuses a voltage that would push a bin below zero (one line, the setting named)."""
    from simulate.errors import SimulateInputError
    from simulate.settings import SimulationSettings
    from simulate.variants import voltage_variant_name

    recipe_like = SimulationSettings(energy_min_kev=15.0, energy_step_kev=5.0)
    at_30 = recipe_like.at_voltage(30.0)
    assert at_30.voltage_kv == 30.0 and list(at_30.energies_kev) == [25.0, 30.0]
    assert list(recipe_like.at_voltage(10.0).energies_kev) == [5.0, 10.0]
    assert (at_30.npx, at_30.dmin_nm) == (recipe_like.npx, recipe_like.dmin_nm)
    assert voltage_variant_name(30.0) == "kv30" and voltage_variant_name(12.5) == "kv12p5"
    with pytest.raises(SimulateInputError, match="energies"):
        recipe_like.at_voltage(4.0)


def test_the_figures_go_into_a_card_once(tmp_path):
    """``--card``: the per-energy figures are stored in ``card.json`` and tabled in
    ``card.md``, the trained energy marked; adding them twice is refused."""
    import json
    import shutil

    from voltage_tolerance import add_to_package_card

    from train.shipped import model_folder

    package = tmp_path / "cubic-lab"
    shutil.copytree(model_folder("cubic-lab"), package)
    card = json.loads((package / "card.json").read_text())
    card.pop("beam_energy", None)
    (package / "card.json").write_text(json.dumps(card))
    found = {"accuracy": 0.5, "interval_over_materials": {"low": 0.4, "high": 0.6},
             "per_class": {"225": 0.5}, "n_patterns": 10, "per_material": {"x": 0.5}}  # fmt: skip
    record = {"by_kv": {"20": found, "30": {**found, "accuracy": 0.25}}}
    add_to_package_card(package, record, "python scripts/voltage_tolerance.py ...")
    card = json.loads((package / "card.json").read_text())
    assert card["beam_energy"]["30"]["accuracy"] == 0.25
    assert "per_material" not in card["beam_energy"]["20"]
    text = (package / "card.md").read_text()
    assert "## Beam energy" in text
    assert "| 20 | yes | 0.500 | 0.400-0.600 |" in text and "| 30 | no | 0.250 |" in text
    with pytest.raises(SystemExit, match="already there"):
        add_to_package_card(package, record, "again")


def test_a_variant_package_names_its_recipe_or_is_asked_for_it():
    """A recipe variant's card names no recipe: one line asks for ``--recipe``."""
    from voltage_tolerance import recipe_for

    card = {"build": {"recipe": "cubic-lab-kv-s2"}}
    with pytest.raises(
        SystemExit, match=r"build.recipe 'cubic-lab-kv-s2': not a recipe .*--recipe"
    ):
        recipe_for(card, None, "OUT/cubic-lab-kv-s2")
    assert recipe_for(card, "cubic-lab-kv", "OUT/cubic-lab-kv-s2").name == "cubic-lab-kv"
    assert recipe_for({"build": {"recipe": "cubic-lab"}}, None, "cubic-lab").name == "cubic-lab"
    varied = {"build": {"recipe": "cubic-lab-s3", "recipe_settings": {"varies": "cubic-lab"}}}
    assert recipe_for(varied, None, "OUT/cubic-lab-s3").name == "cubic-lab"  # from its card
