"""EMsoft inputs: write ``.xtal`` crystals and the namelists of EMMC, EMMCOpenCL and
EMEBSDmaster from our settings, and prepare a Monte Carlo file for reuse.

The reading side (master-pattern HDF5 output, settings, structures) is :mod:`simulate.emsoft_io`.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ingest.spacegroups import crystal_system
from simulate.emsoft_io import (
    EMMC_PRIME_SEED,
    EMSOFT_CRYSTAL_SYSTEMS,
    _nml_group,
    _open,
    _scalar,
)
from simulate.errors import EmsoftFileError
from simulate.settings import SimulationSettings
from simulate.structure import StructureLike, as_record, build_crystal, site_bfactors

#: EMMCOpenCL's kernel grid side and electrons per work item (EMsoft's template values).
OPENCL_WORK_GROUP, OPENCL_ELECTRONS_PER_THREAD = 150, 10
#: Electrons one EMMCOpenCL kernel pass runs.
OPENCL_ELECTRONS_PER_PASS = OPENCL_WORK_GROUP**2 * OPENCL_ELECTRONS_PER_THREAD


def write_xtal(path: str | Path, structure: StructureLike, bfactors_nm2=None) -> Path:
    """Write an EMsoft ``.xtal`` (HDF5 ``CrystalData``) for a lake structure record.

    Lattice in nm and degrees, one ``AtomData`` column (x, y, z, occupancy, B in nm^2) per
    site of the asymmetric unit, ``SpaceGroupSetting`` the origin choice (1 when the group
    has only one).
    """
    import h5py
    from de_ebsd.crystal import atomic_number

    record = as_record(structure)
    crystal = build_crystal(record, bfactors_nm2)  # validates the record
    b_values = list(bfactors_nm2) if bfactors_nm2 is not None else site_bfactors(record)
    sites = record.sites
    atom_data = np.array(
        [[*site.xyz, site.occupancy, float(b)] for site, b in zip(sites, b_values, strict=True)],
        dtype=np.float32,
    ).T
    number = int(crystal.space_group)
    setting = record.origin_choice if crystal.has_two_origins else 1
    lattice = np.array(
        [crystal.a, crystal.b, crystal.c, crystal.alpha, crystal.beta, crystal.gamma]
    )
    now = dt.datetime.now()
    path = Path(path)
    with h5py.File(path, "w") as f:
        data = f.create_group("CrystalData")
        data["AtomData"] = atom_data
        data["Atomtypes"] = np.array([atomic_number(s.element) for s in crystal.sites], np.int32)
        data["CrystalSystem"] = np.array([EMSOFT_CRYSTAL_SYSTEMS[crystal_system(number)]], np.int32)
        data["LatticeParameters"] = lattice
        data["Natomtypes"] = np.array([len(sites)], np.int32)
        data["SpaceGroupNumber"] = np.array([number], np.int32)
        data["SpaceGroupSetting"] = np.array([setting], np.int32)
        # EMsoft reads these as variable-length ASCII strings (HDF_readDatasetStringArray
        # fails on fixed-length ones and the program then crashes).
        text = h5py.string_dtype("ascii")
        for name, value in (
            ("Source", "ebsdlake structure record"),
            ("Creator", "ebsdlake"),
            ("ProgramName", "ebsdlake"),
            ("CreationDate", now.strftime("%b %d %Y")),
            ("CreationTime", now.strftime("%H:%M:%S")),
        ):
            data.create_dataset(name, data=[value.encode("ascii")], dtype=text)
    return path


def _fortran(value: Any) -> str:
    if isinstance(value, bool):
        return ".TRUE." if value else ".FALSE."
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, float):
        return f"{value!r}D0" if "e" not in repr(value) else repr(value).replace("e", "D")
    return str(value)


def format_namelist(name: str, values: Mapping[str, Any]) -> str:
    """A Fortran namelist ``&name ... /`` in the layout EMsoft's templates use."""
    lines = [f" &{name}"]
    lines += [f" {key} = {_fortran(value)}," for key, value in values.items()]
    lines.append(" /")
    return "\n".join(lines) + "\n"


def _beam_and_depth(settings: SimulationSettings, dataname: str) -> dict[str, Any]:
    """The Monte Carlo keys both EMMC and EMMCOpenCL take alike: beam energy and energy bins
    (keV), depth range and step (nm), output file."""
    return {
        "EkeV": float(settings.voltage_kv),
        "Ehistmin": float(settings.energy_min_kev),
        "Ebinsize": float(settings.energy_step_kev),
        "depthmax": float(settings.depth_max_nm),
        "depthstep": float(settings.depth_step_nm),
        "dataname": dataname,
    }


def mc_namelist(settings: SimulationSettings, xtalname: str, dataname: str) -> str:
    """``EMMCOpenCL.nml`` for ``settings`` (full EBSD mode).

    EMMCOpenCL runs whole kernel passes of ``globalworkgrpsz**2 * num_el`` (225,000)
    electrons, ``request // pass + 1`` of them; the request written is one less than the
    passes needed for ``mc_electrons``, so it runs ``ceil(mc_electrons / pass)`` passes (not
    one more) and the file's Monte Carlo is read with that count
    (:func:`simulate.emsoft_io.electrons_simulated`).
    """
    passes = -(-int(settings.mc_electrons) // OPENCL_ELECTRONS_PER_PASS)
    request = passes * OPENCL_ELECTRONS_PER_PASS - 1
    multiplier = max(1, -(-request // 2_000_000_000))
    return format_namelist(
        "MCCLdata",
        {
            "mode": "full",
            "xtalname": xtalname,
            "numsx": 501,
            "sig": float(settings.sample_tilt_deg),
            "omega": 0.0,
            "num_el": OPENCL_ELECTRONS_PER_THREAD,
            "platid": 1,
            "devid": 1,
            "globalworkgrpsz": OPENCL_WORK_GROUP,
            "totnum_el": request // multiplier,
            "multiplier": multiplier,
            **_beam_and_depth(settings, dataname),
        },
    )


def emmc_namelist(settings: SimulationSettings, xtalname: str, dataname: str, threads: int) -> str:
    """``EMMC.nml`` (``&MCdata``) for EMsoft's OpenMP Monte Carlo ``EMMC``.

    EMMC runs ``num_el`` electrons on each of ``threads`` threads (so ``mc_electrons`` is
    rounded up to a multiple of ``threads``), seeding thread ``i`` with ``primeseed + i``;
    ``primeseed`` follows ``mc_seed`` (EMsoft's template value 932117 for seed 0). The
    detector grid is EMsoft's usual ``numsx`` 501.
    """
    threads = max(1, int(threads))
    return format_namelist(
        "MCdata",
        {
            "xtalname": xtalname,
            "sig": float(settings.sample_tilt_deg),
            "omega": 0.0,
            "numsx": 501,
            "primeseed": EMMC_PRIME_SEED + 2 * int(settings.mc_seed),
            "num_el": -(-int(settings.mc_electrons) // threads),
            "nthreads": threads,
            **_beam_and_depth(settings, dataname),
        },
    )


def prepare_mc_file(source: str | Path, target: str | Path) -> str:
    """Copy an EMsoft Monte Carlo file to ``target`` for ``EMEBSDmaster`` to compute on.

    A master computed before into the same file (``EMData/EBSDmaster`` and its header,
    namelists) is removed, so the new one is not mixed with it.

    Returns
    -------
    str
        The crystal file name the Monte Carlo recorded (``MCCLNameList/xtalname``): EMEBSDmaster
        reads the crystal from that name, so the caller writes it there.
    """
    import h5py

    source, target = Path(source), Path(target)
    with _open(source):
        pass  # one-line errors for a missing or non-HDF5 file
    shutil.copyfile(source, target)
    with h5py.File(target, "r+") as f:
        for name in (
            "EMData/EBSDmaster",
            "EMheader/EBSDmaster",
            "NMLparameters/EBSDMasterNameList",
            "NMLparameters/BetheList",
            "NMLfiles/EBSDmasterNML",
            "NMLfiles/BetheParametersNML",
        ):
            if name in f:
                del f[name]
        nml = _nml_group(f, "MCCLNameList")
        if not nml or "xtalname" not in nml:
            raise EmsoftFileError(f"{source}: NMLparameters/MCCLNameList/xtalname is missing")
        xtal = str(_scalar(nml, "xtalname", source)).strip()
    return Path(xtal).name or "crystal.xtal"


def master_namelist(settings: SimulationSettings, energyfile: str, threads: int = 0) -> str:
    """``EMEBSDmaster.nml`` for ``settings``; results go into the Monte Carlo file.

    ``threads`` is EMsoft's ``nthreads`` (0: OpenMP's maximum, ``$OMP_NUM_THREADS``).
    """
    return format_namelist(
        "EBSDmastervars",
        {
            "dmin": float(settings.dmin_nm),
            "npx": int(settings.npx),
            "nthreads": int(threads),
            "energyfile": energyfile,
            "BetheParametersFile": "BetheParameters.nml",
            "copyfromenergyfile": "undefined",
            "h5copypath": "undefined",
            "restart": False,
            "uniform": False,
        },
    )


def bethe_namelist(settings: SimulationSettings) -> str:
    """``BetheParameters.nml`` (strong c1, weak c2, complete c3, sgdbdiff in nm^-1)."""
    return format_namelist(
        "Bethelist",
        {
            "c1": float(settings.bethe_strong),
            "c2": float(settings.bethe_weak),
            "c3": float(settings.bethe_cutoff),
            "sgdbdiff": float(settings.bethe_sg_double_nm_inv),
        },
    )


def parse_namelist(text: str) -> dict[str, Any]:
    """Values of a simple EMsoft namelist (one ``key = value`` per line; ``!`` comments)."""
    values: dict[str, Any] = {}
    for raw in text.splitlines():
        line = raw.split("!", 1)[0].strip().rstrip(",").strip()
        if "=" not in line or line.startswith("&"):
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        values[key] = _parse_value(value)
    return values


def _parse_value(text: str) -> Any:
    if text.upper() in (".TRUE.", ".FALSE."):
        return text.upper() == ".TRUE."
    if text[:1] in ("'", '"'):
        return text[1:-1]
    number = text.upper().replace("D", "E")
    try:
        return int(number)
    except ValueError:
        pass
    try:
        return float(number)
    except ValueError:
        return text
