"""The beam energy a pattern was recorded at against the energies a model was trained on.

Band widths scale with the electron wavelength, so a model trained on masters of one beam
energy can read patterns of another as other structures (docs/RESULTS.md, "Beam energy": a
model trained at 20 kV loses accuracy at 10 and 30 kV). Files often record the voltage (h5ebsd,
NORDIF); predict says when it lies outside what the model was trained on.
"""

from __future__ import annotations

from typing import Any

TOLERANCE_KV = 2.5
"""A recording within this many kV of a trained beam energy counts as trained (half the 5 kV
spacing of the recipes' energies)."""


def trained_beam_energies(card: Any) -> tuple[float, ...] | None:
    """The beam energies (kV) a package was trained on, from its card's recipe settings (the
    simulation's voltage and any further ``beam_energies_kv``); None when the card does not
    say (a package exported from a run, not made by ``model build``)."""
    try:
        settings = card["build"]["recipe_settings"]
        energies = [float(settings["simulation"]["voltage_kv"])]
        energies += [float(v) for v in settings.get("beam_energies_kv") or ()]
    except (KeyError, TypeError, ValueError):
        return None
    return tuple(sorted(set(energies)))


def measured_accuracies(card: Any) -> dict[float, float]:
    """Held-out accuracy by beam energy (kV) as measured into the card
    (``scripts/voltage_tolerance.py --card``); empty when it was not."""
    try:
        return {float(kv): float(v["accuracy"]) for kv, v in card["beam_energy"].items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        return {}


def beam_energy_note(
    recorded_kv: float | None,
    trained_kv: tuple[float, ...] | None,
    measured: dict[float, float] | None = None,
) -> str:
    """One clause for the file's summary line: the recorded beam energy and, when it lies more
    than :data:`TOLERANCE_KV` from every trained one, that the call is outside the model's
    training, with the card's held-out accuracy at the nearest ``measured`` energy when one
    lies within the tolerance; empty when the file records none."""
    if recorded_kv is None:
        return ""
    shown = f"beam {recorded_kv:g} kV from the file"
    if not trained_kv or min(abs(recorded_kv - e) for e in trained_kv) <= TOLERANCE_KV:
        return shown
    trained = "/".join(f"{e:g}" for e in trained_kv)
    note = f"{shown}, outside the model's {trained} kV training: expect lower accuracy"
    near = [kv for kv in measured or {} if abs(kv - recorded_kv) <= TOLERANCE_KV]
    if near:
        kv = min(near, key=lambda e: abs(e - recorded_kv))
        note += f" (held-out {measured[kv]:.2f} at {kv:g} kV on its card)"
    return note
