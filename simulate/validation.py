"""Agreement of the dynamical engine with an EMsoft master pattern (Pearson r).

Re-simulates the structure of an EMsoft EBSD master file through ebsdlake's dynamical
engine with the file's own settings (npx, dmin, Bethe thresholds, energies) and its own
Monte Carlo, and correlates the two masters plane by plane. ``stride`` > 1 compares on the
coarser grid made of every ``stride``-th reference pixel (the Lambert grid of npx/stride has
exactly those directions), which is how the fast test covers the check on CPU.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from simulate.emsoft_io import read_master, read_settings, read_structure
from simulate.engines import get_engine
from simulate.errors import EmsoftFileError, SimulateInputError

#: Environment variable naming EMsoft's Ni master file where kikuchipy is not installed
#: (the GPU session kit ships the file in ``.whl/data/`` instead of kikuchipy).
NI_MASTER_ENV = "EBSDLAKE_NI_MASTER"
NI_MASTER_NAME = "ni_mc_mp_20kv_uint8_gzip_opts9.h5"


def emsoft_ni_master_file() -> Path:
    """EMsoft's Ni master-pattern file (20 keV, npx 200): ``$EBSDLAKE_NI_MASTER`` when set,
    else the copy kikuchipy ships in its data folder.

    Raises
    ------
    EmsoftFileError
        Neither the variable is set nor kikuchipy importable.
    """
    named = os.environ.get(NI_MASTER_ENV)
    if named:
        return Path(named)
    try:
        import kikuchipy
    except ImportError:
        raise EmsoftFileError(
            f"{NI_MASTER_NAME}: set {NI_MASTER_ENV} to the file or install kikuchipy"
        ) from None
    return Path(kikuchipy.__file__).parent / "data" / "emsoft_ebsd_master_pattern" / NI_MASTER_NAME


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation coefficient of two arrays of the same size."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1])


def compare_with_emsoft(
    path: str | Path, stride: int = 1, device: str = "auto", precision: str = "double"
) -> dict[str, Any]:
    """Simulate the file's structure at its settings and correlate with its master.

    Parameters
    ----------
    path
        EMsoft EBSD master-pattern HDF5 file (with its Monte Carlo and namelists).
    stride
        Compare every ``stride``-th pixel (npx must be divisible by it); 1 is the full grid.
    device
        Torch device for the engine (``"auto"``, ``"cpu"``, ``"cuda"``).

    Returns
    -------
    dict
        ``pearson_r`` (both hemispheres, all planes), ``pearson_north``, ``pearson_south``,
        ``npx`` compared, the settings used and ``wall_time_s``.
    """
    reference = read_master(path)
    settings = read_settings(path)
    if stride < 1 or settings.npx % stride:
        raise SimulateInputError(f"stride {stride}: must divide the file's npx={settings.npx}")
    settings = settings.refine(npx=settings.npx // stride, device=device, precision=precision)
    structure = {**read_structure(path), "material_id": Path(path).stem}
    started = time.perf_counter()
    result = get_engine("dynamical").run(structure, settings)
    wall = time.perf_counter() - started
    ref = reference.master[:, :, ::stride, ::stride]
    ours = result.master
    if ours.shape != ref.shape:
        raise SimulateInputError(f"{path}: simulated {ours.shape} vs reference {ref.shape}")
    return {
        "file": str(path),
        "stride": int(stride),
        "npx_compared": int(settings.npx),
        "pixels_compared": int(ref.size),
        "energies_kev": result.energies_kev.tolist(),
        "pearson_r": pearson(ours, ref),
        "pearson_north": pearson(ours[:, 0], ref[:, 0]),
        "pearson_south": pearson(ours[:, 1], ref[:, 1]),
        "settings": settings.to_attrs(),
        "device": result.attrs.get("device"),
        "engine_version": result.attrs.get("engine_version"),
        "wall_time_s": round(wall, 2),
    }
