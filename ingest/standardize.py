"""Normalisation of a structure to its conventional standard setting and asymmetric unit.

spglib finds the space group and returns the conventional cell in the setting of the Hall number
:func:`ingest.spacegroups.stored_hall_number` picks (ITA standard; origin choice explicit for the
two-origin groups; hexagonal axes for rhombohedral groups). The asymmetric unit (one
representative per Wyckoff orbit, with its letter) is what the simulation engines expand again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import spglib
from pymatgen.core import Element, Lattice, Structure

from ingest.errors import SymmetryError
from ingest.labels import DEFAULT_ANGLE_TOLERANCE, DEFAULT_SYMPREC, symmetry_dataset
from ingest.spacegroups import origin_choice, stored_hall_number

#: Debye-Waller factor B in nm^2 used when a source gives none: de-ebsd's ``AtomSite`` default
#: and EMsoft's usual room-temperature value (0.005 nm^2 = 0.5 Angstrom^2).
DEFAULT_B_NM2 = 0.005


@dataclass(frozen=True)
class Site:
    """One site of the asymmetric unit in the stored setting.

    Attributes
    ----------
    element
        Element symbol.
    wyckoff
        Wyckoff letter in the stored setting.
    multiplicity
        Number of atoms of the orbit in the conventional cell.
    xyz
        Fractional coordinates of the representative atom, in [0, 1).
    occupancy
        Always 1.0: ingest stores ordered structures only.
    B_nm2
        Isotropic Debye-Waller factor in nm^2.
    """

    element: str
    wyckoff: str
    multiplicity: int
    xyz: tuple[float, float, float]
    occupancy: float = 1.0
    B_nm2: float = DEFAULT_B_NM2

    def as_attrs(self) -> dict:
        """The site as a plain dict for the lake's ``sites`` attribute."""
        return {
            "element": self.element,
            "wyckoff": self.wyckoff,
            "multiplicity": self.multiplicity,
            "xyz": list(self.xyz),
            "occupancy": self.occupancy,
            "B_nm2": self.B_nm2,
        }


@dataclass(frozen=True)
class StandardCell:
    """A structure in its stored conventional standard setting.

    Attributes
    ----------
    structure
        The full conventional cell (pymatgen, lengths in Angstrom).
    sites
        The asymmetric unit.
    hall_number
        spglib Hall number of the setting (1-530).
    dataset
        spglib dataset of the conventional cell in that setting.
    """

    structure: Structure
    sites: tuple[Site, ...]
    hall_number: int
    dataset: object

    @property
    def space_group(self) -> int:
        """International space-group number."""
        return int(self.dataset.number)

    def setting(self) -> dict:
        """The setting as stored in the lake's ``setting`` attribute."""
        kind = spglib.get_spacegroup_type(self.hall_number)
        number = int(kind.number)
        return {
            "hall_number": self.hall_number,
            "hall_symbol": str(kind.hall_symbol),
            "hm_full": str(kind.international_full),
            "spglib_choice": str(kind.choice),
            "origin_choice": origin_choice(number),
            "axes": "hexagonal" if str(kind.international).startswith("R") else "standard",
            "convention": "ITA conventional standard cell (spglib standardisation)",
        }


def _representative(members: np.ndarray, positions: np.ndarray) -> int:
    """The orbit member nearest the origin (smallest coordinate sum, then lexicographic), so
    that the stored representative does not depend on atom order."""
    return int(
        min(members, key=lambda i: (round(float(positions[i].sum()), 6), *positions[i].round(6)))
    )


def spglib_cell(structure: Structure) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lattice rows in Angstrom, fractional coordinates, atomic numbers) of an ordered
    structure."""
    numbers = np.array([site.specie.Z for site in structure], dtype=int)
    return structure.lattice.matrix, structure.frac_coords, numbers


def standardize(
    structure: Structure,
    symprec: float = DEFAULT_SYMPREC,
    angle_tolerance: float = DEFAULT_ANGLE_TOLERANCE,
    what: str = "structure",
) -> StandardCell:
    """Return ``structure`` in its conventional standard setting with its asymmetric unit.

    Per-site ``B_nm2`` site properties, where the input has them, follow each atom into the
    standard cell; other sites get :data:`DEFAULT_B_NM2`.

    Parameters
    ----------
    structure
        An ordered structure (lengths in Angstrom).
    symprec
        spglib distance tolerance in Angstrom.
    angle_tolerance
        spglib angle tolerance in degrees.
    what
        Name used in error messages (material id or file).
    """
    cell = spglib_cell(structure)
    found = symmetry_dataset(cell, symprec, angle_tolerance, what=what)
    hall = stored_hall_number(int(found.number))
    data = symmetry_dataset(cell, symprec, angle_tolerance, hall_number=hall, what=what)
    b_input = np.array(
        structure.site_properties.get("B_nm2", [None] * len(structure)), dtype=object
    )
    b_primitive = {int(p): b_input[i] for i, p in enumerate(data.mapping_to_primitive)}
    b_std = [b_primitive.get(int(p)) for p in data.std_mapping_to_primitive]

    std_cell = (data.std_lattice, np.mod(data.std_positions, 1.0), data.std_types)
    std = symmetry_dataset(std_cell, symprec, angle_tolerance, hall_number=hall, what=what)
    if int(std.number) != int(found.number):
        raise SymmetryError(
            f"{what}: standard cell has space group {std.number}, input {found.number}; "
            "try another symmetry tolerance"
        )
    positions = np.mod(np.round(std_cell[1], 10), 1.0)
    elements = [Element.from_Z(int(z)).symbol for z in std_cell[2]]
    sites = []
    for orbit in sorted(set(int(i) for i in std.equivalent_atoms)):
        members = np.flatnonzero(std.equivalent_atoms == orbit)
        rep = _representative(members, positions)
        b_value = b_std[rep]
        sites.append(
            Site(
                element=elements[rep],
                wyckoff=str(std.wyckoffs[rep]),
                multiplicity=int(len(members)),
                xyz=tuple(float(x) for x in positions[rep]),
                B_nm2=float(b_value) if b_value is not None else DEFAULT_B_NM2,
            )
        )
    conventional = Structure(
        Lattice(std_cell[0]),
        elements,
        positions,
        site_properties={"B_nm2": [float(b) if b is not None else DEFAULT_B_NM2 for b in b_std]},
    )
    return StandardCell(structure=conventional, sites=tuple(sites), hall_number=hall, dataset=std)
