"""``simulate`` and ``lake import-emsoft`` refuse bad input up front: a bad ``--mc-file``, farm
option or lake URL is one line naming the option before Ray starts or any job is recorded, a
mistyped lake is not created, and an EMsoft file that is not a usable master is rejected before
anything is written."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from cli_checks import one_line_error
from simulation_fixtures import TINY_SETTINGS

from lake import Lake, LakeNotFoundError
from simulate.campaign import run_campaign
from simulate.emsoft_io import check_mc_file, read_master
from simulate.errors import EmsoftFileError, SimulateInputError

TINY_FLAGS = [
    "--npx", "8", "--dmin", "0.15", "--energies", "20", "--mc-electrons", "3000",
    "--bethe", "4", "8", "50", "--device", "cpu", "--quiet",
]  # fmt: skip


@pytest.fixture(scope="module")
def ni_lake(tmp_path_factory) -> str:
    """A local lake holding the Ni prototype and no master."""
    from ingest.prototypes import load_prototypes
    from ingest.writer import ingest

    url = str(tmp_path_factory.mktemp("ni") / "lake")
    ingest(Lake.open(url, create=True), load_prototypes(only=["Ni"]), progress=False)
    return url


@pytest.fixture
def no_ray(monkeypatch):
    """Fail the test if the campaign gets as far as starting Ray."""

    def start_ray(*args, **kwargs):
        raise AssertionError("Ray was started although the input was bad")

    monkeypatch.setattr("simulate.campaign.start_ray", start_ray)


def _no_master(url: str) -> bool:
    return Lake.open(url, mode="r").master_status("proto-Ni", "default") == "missing"


def _master_file(
    path: Path,
    energies=(15.0, 20.0),
    npx: int = 12,
    planes: np.ndarray | None = None,
    mc: bool = False,
) -> Path:
    """An EMsoft-layout master file (``EMData/EBSDmaster``), optionally with a Monte Carlo."""
    n = 2 * npx + 1
    if planes is None:
        planes = np.random.default_rng(0).random((1, len(energies), n, n)) + 0.1
    with h5py.File(path, "w") as f:
        group = f.create_group("EMData/EBSDmaster")
        group["mLPNH"] = planes
        group["mLPSH"] = planes
        group["EkeVs"] = np.asarray(energies, dtype=np.float64)
        if mc:
            f["EMData/MCOpenCL/accum_z"] = np.zeros((3, 3, 10, len(energies)))
            f["EMData/MCOpenCL/totnum_el"] = np.array([1000])
            for name in ("Ehistmin", "Ebinsize", "depthstep"):
                f[f"NMLparameters/MCCLNameList/{name}"] = np.array([1.0])
    return path


# ---- --mc-file ------------------------------------------------------------------------------
def _mc_cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    (tmp_path / "folder.h5").mkdir()
    (tmp_path / "text.h5").write_text("not hdf5\n")
    return {
        "missing": (tmp_path / "missing.h5", "no such file"),
        "directory": (tmp_path / "folder.h5", "is a directory"),
        "not hdf5": (tmp_path / "text.h5", "not an HDF5 file"),
        "master only": (
            _master_file(tmp_path / "master.h5"),
            "not an EMsoft Monte Carlo file (EMData/MCOpenCL/accum_z is missing)",
        ),
        "empty histogram": (
            _master_file(tmp_path / "empty_mc.h5", mc=True),
            "accum_z (3, 3, 10, 2) is empty",
        ),
    }


@pytest.mark.parametrize(
    "case", ["missing", "directory", "not hdf5", "master only", "empty histogram"]
)
def test_bad_mc_file_is_refused_before_any_job(ni_lake, tmp_path, capsys, no_ray, case):
    path, reason = _mc_cases(tmp_path)[case]
    line = one_line_error(
        capsys, ["--lake", ni_lake, "simulate", *TINY_FLAGS, "--mc-file", str(path)]
    )
    assert line.startswith(f"ebsdlake simulate: --mc-file {path}: ") and reason in line
    assert _no_master(ni_lake), "a master was recorded for a campaign that never ran"


def test_mc_file_from_the_config_is_named(ni_lake, tmp_path, capsys, no_ray):
    config = tmp_path / "ebsdlake.toml"
    config.write_text('[simulate]\nmc_file = "nope.h5"\n')
    line = one_line_error(capsys, ["--config", str(config), "--lake", ni_lake, "simulate"])
    assert line.endswith(f"config file {config}: [simulate] mc_file = nope.h5: no such file")


def test_real_emsoft_monte_carlo_passes_and_is_made_absolute(kikuchipy_ni_file, monkeypatch):
    from infra.app.cli import build_parser
    from infra.config import load_config
    from simulate.cli import settings_from_args

    monkeypatch.chdir(kikuchipy_ni_file.parent)
    assert check_mc_file(kikuchipy_ni_file.name) == kikuchipy_ni_file.resolve()
    args = build_parser().parse_args(["simulate", "--mc-file", kikuchipy_ni_file.name])
    args.cfg = load_config(environ={})
    # Ray workers run elsewhere: the path they get must not depend on this directory
    assert settings_from_args(args).mc_file == str(kikuchipy_ni_file.resolve())


def test_python_api_checks_the_mc_file_too(ni_lake, tmp_path, no_ray):
    settings = TINY_SETTINGS.refine(mc_file=str(tmp_path / "missing.h5"))
    with pytest.raises(EmsoftFileError, match=r"mc_file = .*missing\.h5: no such file"):
        run_campaign(ni_lake, None, settings, progress=False)
    assert _no_master(ni_lake)


# ---- the lake -------------------------------------------------------------------------------
def test_mistyped_lake_is_an_error_not_a_new_lake(tmp_path, capsys, no_ray):
    typo = tmp_path / "lakee"
    line = one_line_error(capsys, ["--lake", str(typo), "simulate", *TINY_FLAGS])
    assert f"{typo}: no lake here" in line
    assert not typo.exists()
    with pytest.raises(LakeNotFoundError, match="no lake here"):
        run_campaign(str(typo), None, TINY_SETTINGS, progress=False)
    assert not typo.exists()


def test_existing_lake_is_still_planned_from(ni_lake, tmp_path, make_master, no_ray):
    """The driver opens the lake read-only; a finished master is skipped without Ray."""
    import shutil

    url = str(tmp_path / "copy")
    shutil.copytree(ni_lake, url)
    Lake.open(url).write_master("proto-Ni", "default", make_master(1, n_energies=1), [20.0], [1.0])
    summary = run_campaign(url, None, TINY_SETTINGS, progress=False)
    assert summary.jobs == 0 and summary.skipped_complete == 1 and summary.ok


def test_unknown_lake_protocol_is_named(capsys):
    line = one_line_error(capsys, ["--lake", "bogus://x", "simulate"])
    assert "lake URL bogus://x (--lake): unknown storage protocol 'bogus'" in line


# ---- farm options ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--time-limit", "0"], "--time-limit 0.0: must be a positive number of seconds"),
        (["--time-limit", "-5"], "--time-limit -5.0: must be a positive number of seconds"),
        (["--num-actors", "0"], "--num-actors 0: must be >= 1"),
        (["--cpus-per-actor", "-1"], "--cpus-per-actor -1.0: must be a positive number of CPUs"),
        (["--cpus-per-actor", "0"], "--cpus-per-actor 0.0: must be a positive number of CPUs"),
        (["--seed", "-1"], "--seed -1: must be >= 0"),
        (["--max-retries", "-1"], "--max-retries -1: must be >= 0"),
        (["--variants", "-1"], "--variants -1: must be >= 0"),
    ],
)
def test_farm_options_are_refused_up_front(ni_lake, capsys, no_ray, flags, message):
    line = one_line_error(capsys, ["--lake", ni_lake, "simulate", *TINY_FLAGS, *flags])
    assert line.startswith(f"ebsdlake simulate: {message}")
    assert _no_master(ni_lake)


def test_config_farm_settings_name_their_origin(ni_lake, tmp_path, capsys, monkeypatch, no_ray):
    config = tmp_path / "ebsdlake.toml"
    config.write_text("[simulate]\ntime_limit_s = 0\n")
    line = one_line_error(capsys, ["--config", str(config), "--lake", ni_lake, "simulate"])
    assert line.endswith(
        f"config file {config}: [simulate] time_limit_s = 0.0: must be a positive number of seconds"
    )
    monkeypatch.setenv("EBSDLAKE_RAY_NUM_CPUS", "-1")
    line = one_line_error(capsys, ["--lake", ni_lake, "simulate"])
    assert line.endswith("EBSDLAKE_RAY_NUM_CPUS = -1: must be >= 0 (0: all CPUs)")


def test_python_api_checks_farm_options(ni_lake, no_ray):
    with pytest.raises(SimulateInputError, match="num_actors = 0: must be >= 1"):
        run_campaign(ni_lake, None, TINY_SETTINGS, num_actors=0, progress=False)


# ---- import-emsoft --------------------------------------------------------------------------
def _bad_masters(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    n = 25
    zero_plane = np.ones((1, 2, n, n))
    zero_plane[0, 1] = 0
    nan = np.ones((1, 2, n, n))
    nan[0, 0, 3, 3] = np.nan
    return {
        "all zero": (
            _master_file(tmp_path / "zero.h5", planes=np.zeros((1, 2, n, n))),
            "mLPNH and mLPSH are all zero",
        ),
        "one zero plane": (
            _master_file(tmp_path / "plane.h5", planes=zero_plane),
            "mLPNH at 20 keV is all zero",
        ),
        "non-finite": (_master_file(tmp_path / "nan.h5", planes=nan), "non-finite values"),
        "energies 0 1 2": (
            _master_file(tmp_path / "ekev.h5", energies=(0.0, 1.0, 2.0)),
            "EkeVs [0, 1, 2] keV outside 1-50 keV",
        ),
        "decreasing energies": (
            _master_file(tmp_path / "down.h5", energies=(20.0, 15.0)),
            "EkeVs [20, 15] keV are not strictly increasing",
        ),
        "npx 2": (
            _master_file(tmp_path / "tiny.h5", npx=2),
            "npx 2 (5x5 planes) is too small",
        ),
    }


def test_valid_synthetic_master_file_is_read(tmp_path):
    """The files of the next test differ from this one only in the defect they carry."""
    result = read_master(_master_file(tmp_path / "ok.h5"))
    assert result.master.shape == (2, 2, 25, 25) and result.attrs["npx"] == 12


@pytest.mark.parametrize(
    "case",
    ["all zero", "one zero plane", "non-finite", "energies 0 1 2", "decreasing energies", "npx 2"],
)
def test_unusable_master_is_rejected(tmp_path, case):
    path, reason = _bad_masters(tmp_path)[case]
    with pytest.raises(EmsoftFileError) as info:
        read_master(path)
    assert str(info.value).startswith(f"{path}: ") and reason in str(info.value)


def test_rejected_import_creates_no_lake(tmp_path, capsys):
    url = tmp_path / "lake"
    path, _ = _bad_masters(tmp_path)["energies 0 1 2"]
    line = one_line_error(capsys, ["--lake", str(url), "lake", "import-emsoft", str(path)])
    assert "ekev.h5: EkeVs [0, 1, 2] keV outside" in line
    folder = tmp_path / "masters"
    folder.mkdir()
    line = one_line_error(capsys, ["--lake", str(url), "lake", "import-emsoft", str(folder)])
    assert line.endswith(f"{folder}: is a directory, not an HDF5 file")
    assert not url.exists()


def test_one_bad_file_stops_the_whole_import(tmp_path, capsys, kikuchipy_ni_file):
    url = str(tmp_path / "lake")
    Lake.open(url, create=True)  # an existing, empty lake
    bad, _ = _bad_masters(tmp_path)["all zero"]
    argv = ["--lake", url, "lake", "import-emsoft", str(kikuchipy_ni_file), str(bad)]
    assert "all zero" in one_line_error(capsys, argv)
    lake = Lake.open(url, mode="r")
    assert lake.structure_ids() == [] and lake.catalog().empty
