"""EMsoft interop: the reader on real EMsoft output (kikuchipy's Ni file), the .xtal and
namelist writers against kikuchipy's EMsoft inputs, the emsoft engine's availability check,
and ``lake import-emsoft``."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from test_emsoft_real import EMSOFT_BIN, SKIP_REASON

from simulate.emsoft_inputs import (
    bethe_namelist,
    master_namelist,
    mc_namelist,
    parse_namelist,
    write_xtal,
)
from simulate.emsoft_io import (
    read_depth_distribution,
    read_master,
    read_settings,
    read_structure,
)
from simulate.engine_emsoft import EmsoftEngine
from simulate.errors import EmsoftFileError, EngineUnavailableError
from simulate.reference_structures import reference_structure
from simulate.settings import SimulationSettings


def test_reader_on_real_emsoft_file(kikuchipy_ni_file):
    result = read_master(kikuchipy_ni_file)
    with h5py.File(kikuchipy_ni_file) as f:
        north = f["EMData/EBSDmaster/mLPNH"][()].sum(axis=0)
        accum_e = f["EMData/MCOpenCL/accum_e"][()]
        total = int(f["EMData/MCOpenCL/totnum_el"][0])
    assert result.master.shape == (1, 2, 401, 401) and result.master.dtype == np.float32
    assert np.array_equal(result.master[:, 0], north.astype(np.float32))
    assert result.energies_kev.tolist() == [20.0]
    # EMMCOpenCL (globalworkgrpsz 150, num_el 10) ran whole passes of 225,000 electrons, one
    # more than the request's quotient, and recorded the request
    ran = (total // 225_000 + 1) * 225_000
    assert result.weights[0] == pytest.approx(accum_e.sum() / ran)
    assert read_settings(kikuchipy_ni_file).mc_electrons == ran
    assert result.attrs["npx"] == 200 and result.attrs["bethe"]["weak"] == 8.0
    settings = read_settings(kikuchipy_ni_file)
    assert (settings.npx, settings.dmin_nm, settings.bethe_cutoff) == (200, 0.05, 50.0)
    structure = read_structure(kikuchipy_ni_file)
    assert structure["spacegroup_number"] == 225
    assert structure["sites"][0]["element"] == "Ni"
    assert structure["lattice_nm"]["a"] == pytest.approx(0.35236)


def test_depth_distribution_counts_what_emsoft_ran(kikuchipy_ni_file):
    """The dynamical engine's Monte Carlo from an EMsoft file divides by the electrons the
    program ran, as the master reader does: both give the same 20 keV yield."""
    from de_ebsd import DepthDistribution

    from simulate.engine_dynamical import energy_weights

    depth = read_depth_distribution(kikuchipy_ni_file)
    assert depth.n_total == 2_000_025_000  # EMMCOpenCL's 8,889 passes, not the 2e9 requested
    assert DepthDistribution.from_emsoft(str(kikuchipy_ni_file)).n_total == 2e9
    weights = energy_weights(depth)
    assert weights == pytest.approx(read_master(kikuchipy_ni_file).weights, rel=1e-9)


def _monte_carlo_file(path, opencl: bool, energies=(18.0, 19.0, 20.0)):
    """A small EMsoft Monte Carlo file of EMMCOpenCL's layout (or EMMC's), consistent counts."""
    rng = np.random.default_rng(2)
    counts = rng.integers(1, 50, size=(3, 3, 10, len(energies))).astype(np.int32)
    with h5py.File(path, "w") as f:
        f["EMData/MCOpenCL/accum_z"] = counts
        f["EMData/MCOpenCL/accum_e"] = counts.sum(axis=2)
        f["EMData/MCOpenCL/totnum_el"] = np.array([100_000])
        f["EMData/MCOpenCL/multiplier"] = np.array([1])
        nml = f.create_group("NMLparameters/MCCLNameList")
        nml["totnum_el"], nml["multiplier"] = np.array([100_000]), np.array([1])
        nml["Ehistmin"], nml["Ebinsize"] = np.array([energies[0]]), np.array([1.0])
        nml["depthstep"] = np.array([1.0])
        if opencl:
            nml["globalworkgrpsz"], nml["num_el"] = np.array([150]), np.array([10])
        else:
            nml["nthreads"] = np.array([2])
    return path, counts


@pytest.mark.parametrize("opencl", [True, False])
def test_depth_distribution_of_each_monte_carlo_program(tmp_path, opencl):
    """EMMCOpenCL: 225,000 electrons ran for a 100,000 request and its half-width lowest bin
    doubled; EMMC: the request, every bin whole. The yields equal the master reader's."""
    from simulate.emsoft_io import _mc_weights
    from simulate.engine_dynamical import energy_weights

    path, counts = _monte_carlo_file(tmp_path / "mc.h5", opencl)
    depth = read_depth_distribution(path)
    ran = 225_000 if opencl else 100_000
    assert depth.n_total == ran
    per_energy = counts.sum(axis=(0, 1, 2)).astype(np.float64)
    if opencl:
        per_energy[0] *= 2
    assert energy_weights(depth) == pytest.approx(per_energy / ran)
    with h5py.File(path) as f:
        assert energy_weights(depth) == pytest.approx(_mc_weights(f, depth.energies_kev))


def test_depth_distribution_without_namelist_is_one_line(tmp_path):
    path, _ = _monte_carlo_file(tmp_path / "mc.h5", opencl=True)
    with h5py.File(path, "a") as f:
        del f["NMLparameters"]
    with pytest.raises(EmsoftFileError, match=r"mc\.h5: NMLparameters/MCCLNameList is missing$"):
        read_depth_distribution(path)


def test_reader_rejects_wrong_files(tmp_path, kikuchipy_ni_file):
    with pytest.raises(EmsoftFileError, match="no such file"):
        read_master(tmp_path / "missing.h5")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(EmsoftFileError, match="EMData/EBSDmaster is missing"):
        read_master(other)


def test_xtal_matches_emsoft_xtal(tmp_path, kikuchipy_data_dir):
    ni = reference_structure("Ni")
    ours = write_xtal(tmp_path / "ni.xtal", ni)
    with h5py.File(ours) as a, h5py.File(kikuchipy_data_dir / "ni.xtal") as b:
        for name in (
            "Atomtypes",
            "CrystalSystem",
            "Natomtypes",
            "SpaceGroupNumber",
            "SpaceGroupSetting",
        ):
            assert np.array_equal(a["CrystalData"][name][()], b["CrystalData"][name][()]), name
        for name in ("AtomData", "LatticeParameters"):
            assert np.allclose(a["CrystalData"][name][()], b["CrystalData"][name][()]), name


def test_namelists_carry_the_settings(kikuchipy_data_dir):
    settings = SimulationSettings(
        npx=200,
        dmin_nm=0.05,
        bethe_strong=4.0,
        bethe_weak=8.0,
        bethe_cutoff=50.0,
        mc_electrons=2_000_000_000,
    )
    mc = parse_namelist(mc_namelist(settings, "ni.xtal", "ni_mc.h5"))
    master = parse_namelist(master_namelist(settings, "ni_mc.h5"))
    bethe = parse_namelist(bethe_namelist(settings))
    template_mc = parse_namelist((kikuchipy_data_dir / "ni_mcopencl.nml").read_text())
    template_master = parse_namelist((kikuchipy_data_dir / "ni_ebsdmaster.nml").read_text())
    template_bethe = parse_namelist((kikuchipy_data_dir / "BetheParameters.nml").read_text())
    assert set(mc) <= set(template_mc) and set(bethe) == set(template_bethe)
    assert set(master) <= set(template_master)
    assert (mc["sig"], mc["EkeV"], mc["Ehistmin"], mc["depthstep"]) == (70.0, 20.0, 10.0, 1.0)
    # EMMCOpenCL runs request // 225,000 + 1 passes: exactly the 8,889 that 2e9 electrons need
    requested = mc["totnum_el"] * mc["multiplier"]
    assert mc["totnum_el"] < 2**31 and requested // 225_000 + 1 == 8_889
    assert (master["npx"], master["dmin"]) == (template_master["npx"], template_master["dmin"])
    assert bethe == template_bethe


def test_emsoft_engine_fails_at_once_without_programs(monkeypatch, tmp_path):
    monkeypatch.setenv("EMSOFT_BIN", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EngineUnavailableError, match=r"EMMC, EMEBSDmaster not found") as info:
        EmsoftEngine().check_available(SimulationSettings(engine="emsoft"))
    assert "EMSOFT_BIN" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.skipif(EMSOFT_BIN is None, reason=SKIP_REASON)
def test_emsoft_engine_runs_ni(monkeypatch):
    monkeypatch.setenv("EMSOFT_BIN", str(EMSOFT_BIN))
    settings = SimulationSettings(
        engine="emsoft",
        npx=40,
        dmin_nm=0.1,
        energy_min_kev=19.0,
        mc_electrons=200_000,
        bethe_strong=4.0,
        bethe_weak=8.0,
        bethe_cutoff=50.0,
    )
    result = EmsoftEngine().run(reference_structure("Ni"), settings)
    assert result.master.shape == (2, 2, 81, 81) and np.all(result.weights > 0)


def test_import_emsoft_into_lake(tmp_path, kikuchipy_ni_file):
    from infra.app.cli import main
    from lake import Lake

    url = str(tmp_path / "lake")
    code = main(
        [
            "--lake",
            url,
            "lake",
            "import-emsoft",
            str(kikuchipy_ni_file),
            "--material-id",
            "emsoft-ni",
        ]
    )
    assert code == 0
    lk = Lake.open(url, mode="r")
    master = lk.master("emsoft-ni", "default")
    with h5py.File(kikuchipy_ni_file) as f:
        south = f["EMData/EBSDmaster/mLPSH"][()].sum(axis=0)[0]
    assert np.array_equal(master.sel(hemisphere="south").values[0], south.astype(np.float32))
    assert master.attrs["engine"] == "emsoft"
    structure = lk.structure("emsoft-ni")
    assert structure["spacegroup_number"] == 225 and structure["formula"] == "Ni"
    assert lk.verify().ok


def test_import_emsoft_bad_file_is_one_line(tmp_path, capsys):
    from infra.app.cli import main

    code = main(
        ["--lake", str(tmp_path / "lake"), "lake", "import-emsoft", str(tmp_path / "nope.h5")]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "nope.h5: no such file" in err and len(err.splitlines()) == 1
