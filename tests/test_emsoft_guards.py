"""Guards around the emsoft engine (issue #14): a master EMsoft left partly unfilled never
enters a lake silently, and a relative ``EMSOFT_BIN`` works.

* Unfilled: EMEBSDmaster's symmetry fill keeps only point operators without translation, so
  for P4_2/mnm (rutile) it leaves the quadrants x*y < 0 exactly zero. :func:`read_master`
  refuses a plane with more than 1 % zero pixels (kikuchipy's uint8 Ni has 0.07 %) unless
  ``check_filled=False`` (cross-validation reads such files to diagnose them); the engine
  turns that into a failed job.
* ``EMSOFT_BIN=.emsoft/bin``: the programs run in a scratch folder, so the folder is made
  absolute where it is read; a missing folder is one line.

Most tests use fake EMsoft programs (small Python scripts); the last one runs the real ones
on TiO2 at npx 10 and skips without them.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from test_emsoft_real import EMSOFT_BIN, SKIP_REASON

from lake import Lake
from simulate.emsoft_io import (
    MAX_UNFILLED_FRACTION,
    check_master_filled,
    read_master,
    unfilled_fractions,
)
from simulate.engine_emsoft import MASTER_PROGRAM, EmsoftEngine, find_programs
from simulate.errors import EmsoftFileError, EngineUnavailableError, SimulateError
from simulate.reference_structures import reference_structure
from simulate.settings import SimulationSettings

REASON = (
    "a known EMsoft limitation for space groups whose point-group operators carry "
    "translations, e.g. P4_2/mnm: use --engine dynamical"
)
NPX = 12
SETTINGS = SimulationSettings(
    engine="emsoft",
    npx=NPX,
    dmin_nm=0.1,
    energy_min_kev=20.0,
    mc_electrons=10_000,
    bethe_strong=4.0,
    bethe_weak=8.0,
    bethe_cutoff=50.0,
    device="cpu",
)


def _rutile_like(npx: int = NPX, energies: int = 2) -> np.ndarray:
    """``(nE, n, n)`` planes zero where x*y < 0, as EMsoft leaves P4_2/mnm."""
    n = 2 * npx + 1
    rows, cols = np.mgrid[-npx : npx + 1, -npx : npx + 1]
    plane = np.where(rows * cols < 0, 0.0, 1.0 + np.hypot(rows, cols))
    return np.repeat(plane[None], energies, axis=0).reshape(energies, n, n)


def _write_master(path: Path, north: np.ndarray, south: np.ndarray, energies) -> Path:
    with h5py.File(path, "w") as f:
        group = f.create_group("EMData/EBSDmaster")
        group["mLPNH"] = north[None]
        group["mLPSH"] = south[None]
        group["EkeVs"] = np.asarray(energies, dtype=np.float64)
    return path


# ---- the check on arrays and files ---------------------------------------------------------
def test_unfilled_fraction_of_rutile_quadrants():
    master = np.stack([_rutile_like(), np.ones((2, 25, 25))], axis=1)
    shares = unfilled_fractions(master)
    assert shares.shape == (2, 2)
    assert shares[:, 0] == pytest.approx(2 * NPX * NPX / 25**2)  # 46.08 %
    assert not shares[:, 1].any()


def test_few_legitimate_zeros_pass():
    """Up to 1 % of a plane may be zero (dark pixels of a uint8 master); above, refused."""
    n = 2 * 50 + 1
    master = np.ones((1, 2, n, n))
    flat = master.reshape(1, 2, -1)
    flat[0, 1, : int(0.009 * n * n)] = 0  # 0.9 %
    check_master_filled("ok.h5", master, np.array([20.0]))
    flat[0, 1, : int(0.015 * n * n)] = 0  # 1.5 %
    with pytest.raises(EmsoftFileError) as info:
        check_master_filled("dark.h5", master, np.array([20.0]))
    assert str(info.value).startswith("dark.h5: mLPSH (south) at 20 keV: EMsoft left 1.5")
    assert MAX_UNFILLED_FRACTION == 0.01


def test_reader_refuses_a_partly_unfilled_master(tmp_path):
    """One line naming file, energy, hemisphere, share and reason; the worst plane is named."""
    south = np.ones((2, 25, 25))
    path = _write_master(tmp_path / "rutile.h5", south, _rutile_like(), (19.0, 20.0))
    with pytest.raises(EmsoftFileError) as info:
        read_master(path)
    message = str(info.value)
    assert message == (
        f"{path}: mLPSH (south) at 19 keV: EMsoft left 46.1% of the pixels unfilled "
        f"(exactly zero; at most 1% allowed); {REASON}"
    )
    assert "\n" not in message


def test_reader_reads_it_for_diagnosis(tmp_path):
    path = _write_master(tmp_path / "rutile.h5", _rutile_like(), _rutile_like(), (19.0, 20.0))
    result = read_master(path, check_filled=False)
    assert result.master.shape == (2, 2, 25, 25)
    assert unfilled_fractions(result.master).min() > 0.4


def test_kikuchipy_ni_reference_passes(kikuchipy_ni_file):
    """EMsoft's Ni (uint8) has 0.07 % zero pixels: well under the limit."""
    result = read_master(kikuchipy_ni_file)
    assert 0 < unfilled_fractions(result.master).max() < 0.001


# ---- fake EMsoft programs ------------------------------------------------------------------
FAKE_MASTER = """#!{python}
import os, sys
import h5py, numpy as np
npx = {npx}
rows, cols = np.mgrid[-npx : npx + 1, -npx : npx + 1]
plane = 1.0 + np.hypot(rows, cols)
if os.environ.get("FAKE_EMSOFT_FILL") == "rutile":
    plane = np.where(rows * cols < 0, 0.0, plane)
with h5py.File("mc.h5", "a") as f:
    group = f.require_group("EMData/EBSDmaster")
    group["mLPNH"] = plane[None, None]
    group["mLPSH"] = plane[None, None]
    group["EkeVs"] = np.array([20.0])
"""


@pytest.fixture
def fake_emsoft(tmp_path, monkeypatch) -> Path:
    """``tmp_path/fake/bin`` with a do-nothing EMMC and an EMEBSDmaster writing an npx-12
    master (zero quadrants with ``FAKE_EMSOFT_FILL=rutile``); cwd is ``tmp_path``."""
    root = tmp_path / "fake"
    (root / "bin").mkdir(parents=True)
    (root / "home" / "resources").mkdir(parents=True)
    (root / "EMsoftConfig.json").write_text(json.dumps({"EMsoftpathname": str(root / "home")}))
    scripts = {
        "EMMC": f"#!{sys.executable}\n",
        MASTER_PROGRAM: FAKE_MASTER.format(python=sys.executable, npx=NPX),
    }
    for name, text in scripts.items():
        program = root / "bin" / name
        program.write_text(text)
        program.chmod(program.stat().st_mode | stat.S_IXUSR)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EMSOFT_BIN", "fake/bin")  # relative, as a user would type it
    monkeypatch.setenv("PATH", os.defpath)
    monkeypatch.delenv("EMSOFT_MC", raising=False)
    monkeypatch.delenv("EMSOFTPATHNAME", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return root / "bin"


def test_relative_emsoft_bin_is_made_absolute(fake_emsoft):
    """Fix: a relative EMSOFT_BIN made the programs unreachable from the scratch folder
    (FileNotFoundError); now they are found as absolute paths and the run works."""
    programs = find_programs()
    assert all(path.is_absolute() for path in programs.values())
    assert programs[MASTER_PROGRAM] == fake_emsoft.absolute() / MASTER_PROGRAM
    result = EmsoftEngine().run(reference_structure("Ni"), SETTINGS)
    assert result.master.shape == (1, 2, 25, 25) and result.master.min() > 0
    # a relative keep_dir too: its scratch folder becomes EMsoft's (absolute) data folder
    assert EmsoftEngine(keep_dir="kept").keep_dir == Path("kept").absolute()


def test_missing_emsoft_bin_folder_is_one_line(fake_emsoft, monkeypatch):
    monkeypatch.setenv("EMSOFT_BIN", "no/such/bin")
    with pytest.raises(EngineUnavailableError) as info:
        EmsoftEngine().check_available(SETTINGS)
    message = str(info.value)
    absolute = Path("no/such/bin").absolute()
    assert message.startswith(f"emsoft engine: EMSOFT_BIN=no/such/bin = {absolute}: no such folder")
    assert "make emsoft" in message and "\n" not in message


def test_missing_program_is_one_line(fake_emsoft):
    (fake_emsoft / MASTER_PROGRAM).unlink()
    with pytest.raises(EngineUnavailableError) as info:
        EmsoftEngine().check_available(SETTINGS)
    message = str(info.value)
    assert message.startswith("emsoft engine: EMEBSDmaster not found in $EMSOFT_BIN (fake/bin = ")
    assert "\n" not in message


def test_engine_refuses_unfilled_master(fake_emsoft, monkeypatch):
    monkeypatch.setenv("FAKE_EMSOFT_FILL", "rutile")
    with pytest.raises(SimulateError) as info:
        EmsoftEngine().run(reference_structure("Ni"), SETTINGS)
    message = str(info.value)
    assert message.startswith("emsoft engine: ") and "/mc.h5: mLPNH (north) at 20 keV" in message
    assert message.endswith(
        f"EMsoft left 46.1% of the pixels unfilled (exactly zero; at most 1% allowed); {REASON}"
    )
    result = EmsoftEngine(check_filled=False).run(reference_structure("Ni"), SETTINGS)
    assert unfilled_fractions(result.master).min() > 0.4


def test_unfilled_master_is_a_failed_job_not_a_lake_master(fake_emsoft, monkeypatch, tmp_path):
    """In a campaign the engine's error is the job's failure; nothing is written."""
    from ingest.prototypes import load_prototypes
    from ingest.writer import ingest
    from simulate.jobs import plan_jobs
    from simulate.worker import FAILED, SimulationWorker

    url = str(tmp_path / "lake")
    ingest(Lake.open(url, create=True), load_prototypes(only=["Ni"]), progress=False)
    (job,) = plan_jobs(Lake.open(url, mode="r"), ["proto-Ni"], settings=SETTINGS).jobs
    monkeypatch.setenv("FAKE_EMSOFT_FILL", "rutile")
    outcome = SimulationWorker(url, None, SETTINGS).run(job)
    assert outcome["status"] == FAILED
    assert outcome["reason"].startswith("engine: emsoft engine: ")
    assert "EMsoft left 46.1% of the pixels unfilled" in outcome["reason"]
    assert Lake.open(url, mode="r").master_status("proto-Ni", "default") == "missing"


# ---- the real programs ---------------------------------------------------------------------
@pytest.mark.skipif(EMSOFT_BIN is None, reason=SKIP_REASON)
def test_real_emsoft_rutile_is_refused_with_relative_bin(monkeypatch):
    """TiO2 (P4_2/mnm) through EMMC + EMEBSDmaster at npx 10, EMSOFT_BIN relative to cwd:
    the programs run (the relative-path fix) and the half-empty master is refused."""
    folder = Path(EMSOFT_BIN).resolve()  # .emsoft/bin in a checkout
    monkeypatch.chdir(folder.parent)
    monkeypatch.setenv("EMSOFT_BIN", folder.name)
    monkeypatch.delenv("EMSOFT_MC", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    tiny = SETTINGS.refine(npx=10, mc_electrons=50_000)
    with pytest.raises(SimulateError) as info:
        EmsoftEngine().run(reference_structure("TiO2"), tiny)
    message = str(info.value)
    assert message.startswith("emsoft engine: ") and "at 20 keV: EMsoft left" in message
    share = float(message.split("EMsoft left ")[1].split("%")[0])
    assert 40 < share < 55 and message.endswith(REASON)
