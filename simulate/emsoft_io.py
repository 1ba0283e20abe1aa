"""EMsoft files: read master-pattern HDF5 output (writing EMsoft's inputs is
:mod:`simulate.emsoft_inputs`).

Reading follows the layout EMsoft 5 writes (and kikuchipy reads): ``EMData/EBSDmaster/mLPNH``
and ``mLPSH`` as ``(numset, nE, 2npx+1, 2npx+1)`` (one plane per atom type, summed here as
kikuchipy does), ``EkeVs`` the plane energies, ``EMData/MCOpenCL/accum_e`` the Monte Carlo
energy histogram ``(ny, nx, nE)`` and ``NMLparameters`` the settings the run used.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ingest.spacegroups import crystal_system
from simulate.engine_base import MasterResult
from simulate.errors import EmsoftFileError, setting_text
from simulate.settings import SimulationSettings

#: EMsoft's crystal-system codes in ``CrystalData/CrystalSystem``.
EMSOFT_CRYSTAL_SYSTEMS = {
    "cubic": 1,
    "tetragonal": 2,
    "orthorhombic": 3,
    "hexagonal": 4,
    "trigonal": 5,
    "monoclinic": 6,
    "triclinic": 7,
}
#: Plane energies an imported EBSD master may have, keV (SEM beams: a few keV to ~30 keV).
EBSD_ENERGY_RANGE_KEV = (1.0, 50.0)
#: Smallest Lambert half-width of an imported master (EMsoft's own default is 500).
MIN_IMPORT_NPX = 10
#: Largest share of exactly-zero pixels one energy plane of one hemisphere may have. A filled
#: EMsoft master has almost none (kikuchipy's uint8 Ni reference: 0.07 %); for space groups
#: whose point-group operators carry translations (P4_2/mnm) EMEBSDmaster leaves ~48 % zero.
MAX_UNFILLED_FRACTION = 0.01
UNFILLED_REASON = (
    "a known EMsoft limitation for space groups whose point-group operators carry "
    "translations, e.g. P4_2/mnm: use --engine dynamical"
)
#: EMMC's ``primeseed`` for ``mc_seed`` 0 (the value in EMsoft's EMMC template).
EMMC_PRIME_SEED = 932117
#: What ``DepthDistribution.from_emsoft`` reads from an EMsoft Monte Carlo file.
MC_DATASETS = (
    "EMData/MCOpenCL/accum_z",
    "EMData/MCOpenCL/totnum_el",
    "NMLparameters/MCCLNameList/Ehistmin",
    "NMLparameters/MCCLNameList/Ebinsize",
    "NMLparameters/MCCLNameList/depthstep",
)


def _scalar(group, name: str, path: Path) -> Any:
    try:
        value = np.asarray(group[name][()]).reshape(-1)[0]
    except KeyError:
        raise EmsoftFileError(f"{path}: dataset {group.name}/{name} is missing") from None
    return value.decode() if isinstance(value, bytes) else value


def _nml_group(f, name: str) -> Mapping:
    return f["NMLparameters"][name] if "NMLparameters" in f and name in f["NMLparameters"] else {}


def read_structure(path: str | Path) -> dict[str, Any]:
    """Structure attributes (lake format) from an EMsoft file's ``CrystalData`` group."""
    from de_ebsd.crystal.data.scattering_tables import ELEMENT_SYMBOLS

    path = Path(path)
    with _open(path) as f:
        if "CrystalData" not in f:
            raise EmsoftFileError(f"{path}: group CrystalData is missing")
        data = f["CrystalData"]
        atoms = np.asarray(data["AtomData"][()], dtype=np.float64)
        types = np.asarray(data["Atomtypes"][()]).reshape(-1)
        lattice = np.asarray(data["LatticeParameters"][()], dtype=np.float64).reshape(-1)
        number = int(_scalar(data, "SpaceGroupNumber", path))
        setting = int(_scalar(data, "SpaceGroupSetting", path))
    sites = []
    for index, z in enumerate(types):
        x, y, zc, occupancy, b = atoms[:, index]
        sites.append(
            {
                "element": ELEMENT_SYMBOLS[int(z) - 1],
                "wyckoff": "",
                "xyz": [float(x), float(y), float(zc)],
                "occupancy": float(occupancy),
                "B_nm2": round(float(b), 6),
            }
        )
    keys = ("a", "b", "c", "alpha", "beta", "gamma")
    return {
        "spacegroup_number": number,
        "crystal_system": crystal_system(number),
        "setting": {"origin_choice": setting if setting in (1, 2) else None},
        "lattice_nm": {k: round(float(v), 6) for k, v in zip(keys, lattice, strict=True)},
        "sites": sites,
        "source": "emsoft",
        "provenance": {"emsoft_file": path.name},
    }


def read_settings(path: str | Path) -> SimulationSettings:
    """The settings an EMsoft master file was computed with (npx, dmin, Bethe, MC energies).

    The file's own Monte Carlo becomes ``mc_file`` so a re-simulation uses exactly it.
    """
    path = Path(path)
    with _open(path) as f:
        master = _nml_group(f, "EBSDMasterNameList")
        mc = _nml_group(f, "MCCLNameList")
        bethe = _nml_group(f, "BetheList")
        if not master or not mc:
            raise EmsoftFileError(f"{path}: NMLparameters EBSDMasterNameList/MCCLNameList missing")
        energies = np.asarray(f["EMData/EBSDmaster/EkeVs"][()], dtype=np.float64).reshape(-1)
        values = {
            "npx": int(_scalar(master, "npx", path)),
            "dmin_nm": round(float(_scalar(master, "dmin", path)), 6),
            "voltage_kv": float(np.floor(float(_scalar(mc, "EkeV", path)) * 1e6) / 1e6),
            "sample_tilt_deg": float(_scalar(mc, "sig", path)),
            "depth_max_nm": float(_scalar(mc, "depthmax", path)),
            "depth_step_nm": float(_scalar(mc, "depthstep", path)),
            "energy_step_kev": float(_scalar(mc, "Ebinsize", path)),
            "mc_electrons": electrons_simulated(mc, path),
        }
        if bethe:
            values.update(
                bethe_strong=float(_scalar(bethe, "c1", path)),
                bethe_weak=float(_scalar(bethe, "c2", path)),
                bethe_cutoff=float(_scalar(bethe, "c3", path)),
                bethe_sg_double_nm_inv=float(_scalar(bethe, "sgdbdiff", path)),
            )
    values["energy_min_kev"] = float(energies.min())
    values["energy_max_kev"] = float(energies.max())
    values["voltage_kv"] = max(values["voltage_kv"], values["energy_max_kev"])
    return SimulationSettings(**values, mc_file=str(path))


def read_master(path: str | Path, check_filled: bool = True) -> MasterResult:
    """An EMsoft EBSD master-pattern file as a :class:`MasterResult` (float32, summed sites).

    Weights are the Monte Carlo yield per energy plane (``accum_e`` summed over the detector
    plane, divided by the incident electrons) where the file has its Monte Carlo, else 1.
    With ``check_filled`` (the default) a master EMsoft left partly unfilled is refused
    (:func:`check_master_filled`); diagnosis tools pass False to read it anyway.
    """
    path = Path(path)
    with _open(path) as f:
        group_path = "EMData/EBSDmaster"
        if group_path not in f:
            raise EmsoftFileError(f"{path}: group {group_path} is missing (not an EBSD master)")
        group = f[group_path]
        for name in ("mLPNH", "mLPSH", "EkeVs"):
            if name not in group:
                raise EmsoftFileError(f"{path}: dataset {group_path}/{name} is missing")
        north = _planes(np.asarray(group["mLPNH"][()]), path, "mLPNH")
        south = _planes(np.asarray(group["mLPSH"][()]), path, "mLPSH")
        energies = np.asarray(group["EkeVs"][()], dtype=np.float64).reshape(-1)
        weights = _mc_weights(f, energies)
        mc_nml = _nml_group(f, "MCCLNameList")
        simulated = electrons_simulated(mc_nml, path) if "totnum_el" in mc_nml else None
        master_nml = _nml_group(f, "EBSDMasterNameList")
        # read inside the file's context: a closed group is falsy and would drop dmin
        dmin = float(_scalar(master_nml, "dmin", path)) if master_nml else None
        bethe = (
            np.asarray(group["BetheParameters"][()]).tolist() if "BetheParameters" in group else []
        )
        version = ""
        if "EMheader/EBSDmaster/Version" in f:
            version = _scalar(f["EMheader/EBSDmaster"], "Version", path)
        duration = None
        if "EMheader/EBSDmaster/Duration" in f:
            duration = float(_scalar(f["EMheader/EBSDmaster"], "Duration", path))
    if north.shape != south.shape or north.shape[0] != len(energies):
        raise EmsoftFileError(
            f"{path}: mLPNH {north.shape}, mLPSH {south.shape} and {len(energies)} EkeVs disagree"
        )
    check_energies(path, energies)
    master = np.stack([north, south], axis=1).astype(np.float32)
    npx = check_master_grid(path, master, energies)
    if check_filled:
        check_master_filled(path, master, energies)
    attrs: dict[str, Any] = {
        "engine": "emsoft",
        "engine_version": f"EMsoft {version}".strip(),
        "npx": int(npx),
        "imported_from": path.name,
        "emsoft_duration": duration,
    }
    if dmin is not None:
        attrs["dmin_nm"] = round(dmin, 6)
    if simulated is not None:
        attrs["mc_electrons_simulated"] = int(simulated)
    if len(bethe) >= 3:
        attrs["bethe"] = {
            "strong": float(bethe[0]),
            "weak": float(bethe[1]),
            "cutoff": float(bethe[2]),
            "sg_double_nm_inv": float(bethe[3]) if len(bethe) > 3 else 1.0,
        }
    return MasterResult(master=master, energies_kev=energies, weights=weights, attrs=attrs)


def check_energies(path: Path, energies: np.ndarray) -> None:
    """Raise :class:`EmsoftFileError` unless ``EkeVs`` are increasing EBSD beam energies."""
    low, high = EBSD_ENERGY_RANGE_KEV
    shown = ", ".join(f"{e:g}" for e in energies[:6]) + (", ..." if len(energies) > 6 else "")
    if not len(energies) or not np.all(np.isfinite(energies)):
        raise EmsoftFileError(f"{path}: EkeVs [{shown}] are not finite energies")
    if energies.min() < low or energies.max() > high:
        raise EmsoftFileError(
            f"{path}: EkeVs [{shown}] keV outside {low:g}-{high:g} keV (EBSD beam energies)"
        )
    if np.any(np.diff(energies) <= 0):
        raise EmsoftFileError(f"{path}: EkeVs [{shown}] keV are not strictly increasing")


def check_master_grid(path: Path, master: np.ndarray, energies: np.ndarray) -> int:
    """The Lambert half-width ``npx`` of ``master`` ``(nE, 2, n, n)``; raises
    :class:`EmsoftFileError` on a grid too small or not square and odd, on non-finite values
    and on an all-zero plane."""
    rows, cols = master.shape[-2:]
    if rows != cols or rows % 2 == 0:
        raise EmsoftFileError(f"{path}: mLPNH planes are {rows}x{cols}, expected (2 npx + 1)^2")
    npx = (cols - 1) // 2
    if npx < MIN_IMPORT_NPX:
        raise EmsoftFileError(
            f"{path}: npx {npx} ({cols}x{cols} planes) is too small; need npx >= {MIN_IMPORT_NPX}"
        )
    if not np.all(np.isfinite(master)):
        raise EmsoftFileError(f"{path}: mLPNH/mLPSH hold non-finite values (NaN or inf)")
    empty = ~master.reshape(len(energies), 2, -1).any(axis=2)
    if empty.all():
        raise EmsoftFileError(f"{path}: mLPNH and mLPSH are all zero (no master pattern)")
    if empty.any():
        energy, hemisphere = np.argwhere(empty)[0]
        name = ("mLPNH", "mLPSH")[hemisphere]
        raise EmsoftFileError(f"{path}: {name} at {energies[energy]:g} keV is all zero")
    return int(npx)


def unfilled_fractions(master: np.ndarray) -> np.ndarray:
    """Share of exactly-zero pixels per energy plane and hemisphere: ``(nE, 2)`` from a
    master ``(nE, 2, n, n)``."""
    master = np.asarray(master)
    return (master == 0).reshape(*master.shape[:2], -1).mean(axis=2)


def check_master_filled(
    path: str | Path,
    master: np.ndarray,
    energies: np.ndarray,
    limit: float = MAX_UNFILLED_FRACTION,
) -> None:
    """Raise :class:`EmsoftFileError` when a plane of ``master`` ``(nE, 2, n, n)`` has more
    than ``limit`` of its pixels exactly zero (EMsoft left them unfilled); the message names
    the file, the energy, the hemisphere and the share of the worst plane."""
    shares = unfilled_fractions(master)
    if not (shares > limit).any():
        return
    energy, hemisphere = np.unravel_index(int(np.argmax(shares)), shares.shape)
    name = ("mLPNH (north)", "mLPSH (south)")[hemisphere]
    share = float(shares[energy, hemisphere])
    raise EmsoftFileError(
        f"{path}: {name} at {float(energies[energy]):g} keV: EMsoft left {share * 100:.3g}% of "
        f"the pixels unfilled (exactly zero; at most {limit * 100:g}% allowed); {UNFILLED_REASON}"
    )


def check_mc_file(path: str | Path, option: str = "mc_file") -> Path:
    """Raise :class:`EmsoftFileError` unless ``path`` is an EMsoft Monte Carlo HDF5 file the
    dynamical engine can read; the message starts with ``option`` (``--mc-file``).

    Returns
    -------
    Path
        The file's absolute path (Ray workers run in other working directories).
    """
    path = Path(path)
    where = setting_text(option, path)
    try:
        with _open(path) as f:
            missing = [name for name in MC_DATASETS if name not in f]
            if missing:
                raise EmsoftFileError(f"not an EMsoft Monte Carlo file ({missing[0]} is missing)")
            accum = f["EMData/MCOpenCL/accum_z"]
            if accum.ndim != 4 or not np.any(np.asarray(accum[()])):
                raise EmsoftFileError(f"EMData/MCOpenCL/accum_z {accum.shape} is empty or not 4-D")
    except EmsoftFileError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        raise EmsoftFileError(f"{where}: {reason}") from None
    return path.resolve()


def _open(path: Path):
    import h5py

    if path.is_dir():
        raise EmsoftFileError(f"{path}: is a directory, not an HDF5 file")
    if not path.is_file():
        raise EmsoftFileError(f"{path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise EmsoftFileError(f"{path}: not an HDF5 file ({exc})") from None


def _planes(data: np.ndarray, path: Path, name: str) -> np.ndarray:
    """(nE, n, n) from EMsoft's (numset, nE, n, n) or (nE, n, n), summing atom sets."""
    if data.ndim == 4:
        return data.astype(np.float64).sum(axis=0)
    if data.ndim == 3:
        return data.astype(np.float64)
    if data.ndim == 2:
        return data.astype(np.float64)[None]
    raise EmsoftFileError(f"{path}: {name} has shape {data.shape}, expected (numset, nE, n, n)")


def is_opencl_monte_carlo(nml: Mapping) -> bool:
    """Whether ``MCCLNameList`` is EMMCOpenCL's (it has the kernel's work sizes; EMMC's has
    ``nthreads`` instead)."""
    return "globalworkgrpsz" in nml and "num_el" in nml


def electrons_simulated(nml: Mapping, path: Path) -> int:
    """Incident electrons the Monte Carlo ran, from its ``MCCLNameList``.

    EMMC runs the request (``totnum_el`` x ``multiplier``). EMMCOpenCL runs whole kernel
    passes of ``globalworkgrpsz**2 * num_el`` electrons, ``request // pass + 1`` of them, and
    writes the request, not what it ran (EMsoft d50c973, ``EMMCOpenCL.f90``: its loop bound
    and the ``totnum_el`` it corrects only after writing the log).
    """
    requested = int(_scalar(nml, "totnum_el", path))
    if "multiplier" in nml:
        requested *= int(_scalar(nml, "multiplier", path))
    if not is_opencl_monte_carlo(nml):
        return requested
    per_pass = int(_scalar(nml, "globalworkgrpsz", path)) ** 2 * int(_scalar(nml, "num_el", path))
    return (requested // per_pass + 1) * per_pass


def read_depth_distribution(path: str | Path):
    """de-ebsd's ``DepthDistribution`` of an EMsoft Monte Carlo file, counted as EMsoft ran it.

    ``DepthDistribution.from_emsoft`` divides by the request (``totnum_el`` x ``multiplier``)
    and takes every energy bin as whole; an EMMCOpenCL file ran more electrons than it records
    (:func:`electrons_simulated`, 2.25x for a 100,000 request) and its lowest bin spans half a
    bin, so both are corrected here, the same way :func:`_mc_weights` corrects ``accum_e``:
    the dynamical engine's yields from a Monte Carlo file then match EMsoft's master's.
    """
    from dataclasses import replace

    from de_ebsd import DepthDistribution

    path = Path(path)
    with _open(path) as f:
        nml = _nml_group(f, "MCCLNameList")
        if not nml:
            raise EmsoftFileError(f"{path}: NMLparameters/MCCLNameList is missing")
        simulated = electrons_simulated(nml, path)
        half_lowest_bin = is_opencl_monte_carlo(nml)
    depth = DepthDistribution.from_emsoft(str(path))
    accum = np.array(depth.accum_z, dtype=np.float64)
    if half_lowest_bin and len(accum) > 1:
        accum[0] *= 2.0
    return replace(depth, accum_z=accum, n_total=float(simulated))


def _mc_weights(f, energies: np.ndarray) -> np.ndarray:
    """Backscattered electrons per energy plane over incident electrons.

    EMMCOpenCL counts only energies above ``Ehistmin`` (EMMC, as built here, from half a bin
    below), so its lowest bin spans half a bin: its count is doubled (the yield per keV of the
    half it saw, times the bin width).
    """
    mc = f.get("EMData/MCOpenCL")
    nml = _nml_group(f, "MCCLNameList")
    if mc is None or "accum_e" not in mc or not nml:
        return np.ones(len(energies))
    accum = np.asarray(mc["accum_e"][()], dtype=np.float64)
    per_bin = accum.reshape(-1, accum.shape[-1]).sum(axis=0)  # (ny, nx, nE) -> (nE,)
    if is_opencl_monte_carlo(nml) and len(per_bin) > 1:
        per_bin[0] *= 2.0
    e_min = float(np.asarray(nml["Ehistmin"][()]).reshape(-1)[0])
    e_bin = float(np.asarray(nml["Ebinsize"][()]).reshape(-1)[0])
    total = float(electrons_simulated(nml, Path(f.filename)))
    mc_energies = e_min + e_bin * np.arange(len(per_bin))
    index = [int(np.argmin(np.abs(mc_energies - e))) for e in energies]
    return per_bin[index] / max(total, 1.0)
