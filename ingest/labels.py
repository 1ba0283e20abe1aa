"""Symmetry labels of a structure and of its compositionally-disordered equivalent.

The paper's relabelling (Yan et al. 2025): every atom is set to one element and the space group is
found again with spglib; a B2 NiAl (Pm-3m) becomes bcc (Im-3m), a B1 TiC (Fm-3m) becomes simple
cubic (Pm-3m). Both the true and the disordered labels are stored; ``train`` picks one.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import spglib

from ingest.errors import SymmetryError
from ingest.spacegroups import bravais_lattice, crystal_system
from lake.structures import LABEL_KEYS

#: Default spglib distance tolerance in Angstrom (pymatgen's and ebsdlake.toml's default).
DEFAULT_SYMPREC = 0.01
#: Default spglib angle tolerance in degrees.
DEFAULT_ANGLE_TOLERANCE = 5.0


Cell = tuple[np.ndarray, np.ndarray, np.ndarray]
"""A spglib cell: lattice rows (Angstrom), fractional positions, integer atom types."""


@dataclass(frozen=True)
class SymmetryLabels:
    """Space group number and Hermann-Mauguin symbol, point group, crystal system and Bravais
    lattice (Pearson-style, e.g. ``"cF"``) of one structure."""

    spacegroup_number: int
    spacegroup_symbol: str
    point_group: str
    crystal_system: str
    bravais_lattice: str

    def as_attrs(self, prefix: str = "") -> dict[str, Any]:
        """Flat lake attributes, keys optionally prefixed (``"disordered_"``)."""
        return {f"{prefix}{key}": value for key, value in asdict(self).items()}

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any], prefix: str = "") -> SymmetryLabels:
        """Read a label set back from flat lake attributes."""
        return cls(**{key: attrs[f"{prefix}{key}"] for key in LABEL_KEYS})


def symmetry_dataset(
    cell: Cell,
    symprec: float = DEFAULT_SYMPREC,
    angle_tolerance: float = DEFAULT_ANGLE_TOLERANCE,
    hall_number: int = 0,
    what: str = "structure",
):
    """spglib's symmetry dataset of ``cell``; raise :class:`SymmetryError` when spglib fails.

    Parameters
    ----------
    symprec
        Distance tolerance in Angstrom.
    angle_tolerance
        Angle tolerance in degrees.
    hall_number
        Setting to standardise into (0: spglib's default for the group found).
    """
    if not symprec > 0:
        raise SymmetryError(f"symmetry tolerance must be > 0 Angstrom, got {symprec}")
    with warnings.catch_warnings():  # spglib 2.x warns about its own error-handling switch
        warnings.simplefilter("ignore", DeprecationWarning)
        dataset = spglib.get_symmetry_dataset(
            cell, symprec=symprec, angle_tolerance=angle_tolerance, hall_number=hall_number
        )
    if dataset is None:
        raise SymmetryError(
            f"{what}: spglib found no symmetry at tolerance {symprec} Angstrom "
            f"({spglib.get_error_message()})"
        )
    return dataset


def labels_from_dataset(dataset) -> SymmetryLabels:
    """The label set of an spglib dataset."""
    number = int(dataset.number)
    symbol = str(dataset.international)
    return SymmetryLabels(
        spacegroup_number=number,
        spacegroup_symbol=symbol,
        point_group=str(dataset.pointgroup),
        crystal_system=crystal_system(number),
        bravais_lattice=bravais_lattice(number, symbol),
    )


def symmetry_labels(
    cell: Cell,
    symprec: float = DEFAULT_SYMPREC,
    angle_tolerance: float = DEFAULT_ANGLE_TOLERANCE,
    what: str = "structure",
) -> SymmetryLabels:
    """Labels of the structure as it is (its true space group)."""
    return labels_from_dataset(symmetry_dataset(cell, symprec, angle_tolerance, what=what))


def disordered_labels(
    cell: Cell,
    symprec: float = DEFAULT_SYMPREC,
    angle_tolerance: float = DEFAULT_ANGLE_TOLERANCE,
    what: str = "structure",
) -> SymmetryLabels:
    """Labels of the compositionally-disordered structure: every atom set to one element."""
    lattice, positions, types = cell
    one_element = np.ones(len(types), dtype=int)
    return labels_from_dataset(
        symmetry_dataset((lattice, positions, one_element), symprec, angle_tolerance, what=what)
    )
