"""scripts/cross_validate_engines.py at small size: de-ebsd against EMsoft for Ni.

Needs the EMsoft programs (``make emsoft``); skips without them.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from test_emsoft_real import EMSOFT_BIN, SKIP_REASON

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "cross_validate_engines.py"


def _script():
    spec = importlib.util.spec_from_file_location("cross_validate_engines", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_wavelength_is_relativistic():
    """20 keV electrons: 8.59 pm."""
    assert _script().electron_wavelength_nm(20.0) == pytest.approx(0.008588, rel=1e-3)


@pytest.mark.skipif(EMSOFT_BIN is None, reason=SKIP_REASON)
def test_cross_validation_ni_small(tmp_path, monkeypatch):
    """Ni, npx 20, the recipes' two energy planes (15 and 20 keV, ``--energy-step 5``): the
    beam-energy plane agrees to r > 0.9999; with EMEBSDmaster's absorption-length quirk
    emulated, both hemispheres do."""
    monkeypatch.setenv("EMSOFT_BIN", str(EMSOFT_BIN))
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    out = tmp_path / "xval.json"
    argv = ["--materials", "Ni", "--npx", "20", "--dmin", "0.1", "--bethe", "4", "8", "50"]
    argv += ["--mc-electrons", "100000", "--orientations", "4", "--detector-px", "30"]
    argv += ["--energy-min", "15", "--energy-step", "5"]
    _script().main([*argv, "--out", str(out)])
    (row,) = json.loads(out.read_text())["results"]
    assert "error" not in row, row.get("error")
    assert sorted(row["r_per_energy"], key=float) == ["15", "20"]
    assert row["r_per_energy"]["20"] > 0.9999
    assert row["r_north_emsoft_absorption"] > 0.9999
    assert row["r_south_emsoft_absorption"] > 0.9999
    assert row["emsoft_wall_s"] > 0 and row["dynamical_wall_s"] > 0
