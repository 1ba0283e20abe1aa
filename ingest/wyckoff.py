"""Expansion of Wyckoff sites into full unit-cell contents with spglib's symmetry operations."""

from __future__ import annotations

import numpy as np
import spglib

from ingest.errors import IngestError
from ingest.spacegroups import TWO_ORIGIN_GROUPS, check_space_group

#: Fractional distance below which two images of a site are the same atom.
_SAME_ATOM = 1e-4


def hall_number_for(space_group: int, origin: int | None) -> int:
    """spglib Hall number of ``space_group`` in its ITA standard setting with origin choice
    ``origin`` (1 or 2; ignored for groups with one origin)."""
    check_space_group(space_group)
    halls = [h for h in range(1, 531) if spglib.get_spacegroup_type(h).number == space_group]
    if space_group in TWO_ORIGIN_GROUPS:
        if origin not in (1, 2):
            raise IngestError(
                f"space group {space_group} has two origin choices: give origin_choice 1 or 2"
            )
        return next(h for h in halls if spglib.get_spacegroup_type(h).choice == str(origin))
    return halls[0]


def expand_orbit(hall_number: int, xyz: tuple[float, float, float]) -> np.ndarray:
    """All distinct images (n, 3) of fractional position ``xyz`` in the conventional cell."""
    ops = spglib.get_symmetry_from_database(hall_number)
    point = np.asarray(xyz, dtype=float)
    images = np.mod(ops["rotations"] @ point + ops["translations"], 1.0)
    kept: list[np.ndarray] = []
    for image in images:
        if not any(np.all(np.abs((image - k + 0.5) % 1.0 - 0.5) < _SAME_ATOM) for k in kept):
            kept.append(image)
    return np.mod(np.round(np.array(kept), 10), 1.0)


def wyckoff_multiplicity(hall_number: int, letter: str) -> int:
    """Multiplicity of Wyckoff position ``letter`` in the conventional cell."""
    from pyxtal.symmetry import Group

    number = int(spglib.get_spacegroup_type(hall_number).number)
    for wp in Group(number).Wyckoff_positions:
        if wp.letter == letter:
            return int(wp.multiplicity)
    raise IngestError(f"space group {number} has no Wyckoff position {letter!r}")
