"""Small reference structures as lake structure records (for checks, benchmarks, demos).

Each entry has the flat attributes ``lake`` stores for a structure (``spacegroup_number``,
``crystal_system``, ``setting``, ``lattice_nm``, ``sites`` with per-site ``B_nm2``) in the ITA
standard setting, so the engines can run without the ingest stage. Lattice parameters and
positions are textbook room-temperature values; ``triclinic`` is a made-up two-atom P-1 cell
(no simple element crystallises triclinic) used only to exercise the lowest symmetry.
"""

from __future__ import annotations

import copy
from typing import Any

_CUBIC = {"alpha": 90.0, "beta": 90.0, "gamma": 90.0}


def _record(
    formula: str,
    number: int,
    system: str,
    lattice: dict[str, float],
    sites: list[tuple[str, str, tuple[float, float, float]]],
    b_nm2: float = 0.005,
    origin_choice: int | None = None,
) -> dict[str, Any]:
    return {
        "formula": formula,
        "source": "reference",
        "spacegroup_number": number,
        "crystal_system": system,
        "setting": {"origin_choice": origin_choice, "axes": "standard"},
        "lattice_nm": dict(lattice),
        "sites": [
            {"element": el, "wyckoff": w, "xyz": list(xyz), "occupancy": 1.0, "B_nm2": b_nm2}
            for el, w, xyz in sites
        ],
    }


_REFERENCE: dict[str, dict[str, Any]] = {
    # fcc Ni, Fm-3m; B as in kikuchipy's EMsoft Ni reference file
    "Ni": _record(
        "Ni",
        225,
        "cubic",
        {"a": 0.35236, "b": 0.35236, "c": 0.35236, **_CUBIC},
        [("Ni", "a", (0.0, 0.0, 0.0))],
        b_nm2=0.0035,
    ),
    # diamond Si, Fd-3m origin choice 2 (8a at 1/8 1/8 1/8)
    "Si": _record(
        "Si",
        227,
        "cubic",
        {"a": 0.5431, "b": 0.5431, "c": 0.5431, **_CUBIC},
        [("Si", "a", (0.125, 0.125, 0.125))],
        origin_choice=2,
    ),
    # A15 Cr3Si, Pm-3n
    "Cr3Si": _record(
        "Cr3Si",
        223,
        "cubic",
        {"a": 0.4556, "b": 0.4556, "c": 0.4556, **_CUBIC},
        [("Si", "a", (0.0, 0.0, 0.0)), ("Cr", "c", (0.25, 0.0, 0.5))],
    ),
    # garnet Y3Al5O12, Ia-3d, 160 atoms: the paper's large-cell case
    "Y3Al5O12": _record(
        "Y3Al5O12",
        230,
        "cubic",
        {"a": 1.2008, "b": 1.2008, "c": 1.2008, **_CUBIC},
        [
            ("Y", "c", (0.125, 0.0, 0.25)),
            ("Al", "a", (0.0, 0.0, 0.0)),
            ("Al", "d", (0.375, 0.0, 0.25)),
            ("O", "h", (-0.0306, 0.0512, 0.1500)),
        ],
    ),
    # hcp Mg, P6_3/mmc
    "Mg": _record(
        "Mg",
        194,
        "hexagonal",
        {"a": 0.32094, "b": 0.32094, "c": 0.52107, "alpha": 90.0, "beta": 90.0, "gamma": 120.0},
        [("Mg", "c", (1 / 3, 2 / 3, 0.25))],
    ),
    # CdI2-type TiS2, P-3m1
    "TiS2": _record(
        "TiS2",
        164,
        "trigonal",
        {"a": 0.3407, "b": 0.3407, "c": 0.5695, "alpha": 90.0, "beta": 90.0, "gamma": 120.0},
        [("Ti", "a", (0.0, 0.0, 0.0)), ("S", "d", (1 / 3, 2 / 3, 0.25))],
    ),
    # corundum Al2O3, R-3c on hexagonal axes (a rhombohedral lattice)
    "Al2O3": _record(
        "Al2O3",
        167,
        "trigonal",
        {"a": 0.4759, "b": 0.4759, "c": 1.2991, "alpha": 90.0, "beta": 90.0, "gamma": 120.0},
        [("Al", "c", (0.0, 0.0, 0.3523)), ("O", "e", (0.3064, 0.0, 0.25))],
    ),
    # rutile TiO2, P4_2/mnm
    "TiO2": _record(
        "TiO2",
        136,
        "tetragonal",
        {"a": 0.4594, "b": 0.4594, "c": 0.2959, **_CUBIC},
        [("Ti", "a", (0.0, 0.0, 0.0)), ("O", "f", (0.3049, 0.3049, 0.0))],
    ),
    # alpha-U, Cmcm
    "U": _record(
        "U",
        63,
        "orthorhombic",
        {"a": 0.2854, "b": 0.5869, "c": 0.4955, **_CUBIC},
        [("U", "c", (0.0, 0.1025, 0.25))],
    ),
    # tenorite CuO, C2/c (unique axis b)
    "CuO": _record(
        "CuO",
        15,
        "monoclinic",
        {"a": 0.4684, "b": 0.3423, "c": 0.5129, "alpha": 90.0, "beta": 99.54, "gamma": 90.0},
        [("Cu", "c", (0.25, 0.25, 0.0)), ("O", "e", (0.0, 0.4184, 0.25))],
    ),
    # made-up P-1 cell with two atoms in general positions
    "triclinic": _record(
        "FeSi",
        2,
        "triclinic",
        {"a": 0.40, "b": 0.45, "c": 0.50, "alpha": 80.0, "beta": 85.0, "gamma": 95.0},
        [("Fe", "i", (0.1, 0.2, 0.3)), ("Si", "i", (0.4, 0.35, 0.8))],
    ),
}

#: One structure per crystal system, for the point-group invariance check.
CRYSTAL_SYSTEM_EXAMPLES = {
    "cubic": "Ni",
    "hexagonal": "Mg",
    "trigonal": "TiS2",
    "tetragonal": "TiO2",
    "orthorhombic": "U",
    "monoclinic": "CuO",
    "triclinic": "triclinic",
}


def reference_names() -> list[str]:
    """Names of the bundled reference structures."""
    return sorted(_REFERENCE)


def reference_structure(name: str) -> dict[str, Any]:
    """A copy of one reference structure record (``material_id`` set to ``name``)."""
    try:
        record = copy.deepcopy(_REFERENCE[name])
    except KeyError:
        raise KeyError(
            f"no reference structure {name!r}; known: {', '.join(reference_names())}"
        ) from None
    record["material_id"] = name
    return record
