"""Predict compares the beam energy a file records with the energies the model trained on."""

from __future__ import annotations

import warnings

from train.runs.beam_energy import TOLERANCE_KV, beam_energy_note, trained_beam_energies

pytest_plugins = ("training_fixtures",)


def test_a_card_names_the_energies_its_recipe_simulated():
    card = {"build": {"recipe_settings": {"simulation": {"voltage_kv": 20.0}}}}
    assert trained_beam_energies(card) == (20.0,)
    card["build"]["recipe_settings"]["beam_energies_kv"] = [30.0, 10.0, 20.0]
    assert trained_beam_energies(card) == (10.0, 20.0, 30.0)
    assert trained_beam_energies({}) is None  # exported from a run: unknown
    assert trained_beam_energies({"build": {"recipe_settings": {"simulation": {}}}}) is None


def test_only_a_recording_away_from_every_trained_energy_is_flagged():
    assert beam_energy_note(None, (20.0,)) == ""
    assert beam_energy_note(20.0, (20.0,)) == "beam 20 kV from the file"
    assert "outside" not in beam_energy_note(20.0 + TOLERANCE_KV, (20.0,))
    assert "outside the model's 20 kV training" in beam_energy_note(30.0, (20.0,))
    assert "outside" not in beam_energy_note(30.0, (10.0, 20.0, 30.0))
    assert "outside" not in beam_energy_note(30.0, None)  # the model does not say: no claim
    measured = {20.0: 0.96, 30.0: 0.82}
    assert beam_energy_note(31.0, (20.0,), measured).endswith(
        "(held-out 0.82 at 30 kV on its card)"
    )
    assert "held-out" not in beam_energy_note(40.0, (20.0,), measured)  # none measured near 40


def test_predict_reads_the_file_s_voltage_and_says_when_the_model_never_saw_it(
    nickel_scan_file, tmp_path
):
    """The shipped cubic model was trained at 20 kV: kikuchipy's Ni scan (20 kV) passes, the
    same scan rewritten as recorded at 30 kV is flagged; its geometry is still read."""
    import kikuchipy as kp

    from train.runs.inference import load_model
    from train.runs.predict import predict_file

    model = load_model("cubic-lab")
    assert model.beam_energies_kv == (20.0,)
    at_20 = predict_file(model, nickel_scan_file)
    assert "beam 20 kV from the file" in at_20.geometry_note
    assert "outside" not in at_20.geometry_note
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signal = kp.load(nickel_scan_file)
        signal.metadata.set_item("Acquisition_instrument.SEM.beam_energy", 30.0)
        rewritten = tmp_path / "ni_30kv.h5"
        signal.save(rewritten)
    at_30 = predict_file(model, rewritten)
    assert "beam 30 kV from the file, outside the model's 20 kV training" in at_30.geometry_note
    assert "(held-out 0.82 at 30 kV on its card)" in at_30.geometry_note  # the card measured it
    assert "pattern centre from the file" in at_30.geometry_note
