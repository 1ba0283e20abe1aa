"""Space-group numbers: parsing user ranges, validation, and the stored setting per group.

The stored setting of each group is the International Tables (ITA) standard setting as spglib
numbers it (its default Hall number), with two deliberate choices that make it unambiguous for
the simulation engines:

* rhombohedral groups are stored on hexagonal axes (spglib's and diffpy's default);
* of the 24 groups that ITA lists with two origins, the 15 in :data:`ORIGIN_CHOICE_2_GROUPS`
  are stored with origin choice 2 (inversion centre at the origin, EMsoft's and de-ebsd's
  default), the other 9 with origin choice 1. For those 9 tetragonal groups de-ebsd 0.2.1 derives
  its "origin 2" operators by a shift that differs from ITA origin choice 2, while its origin 1
  is exactly the tabulated one, so origin 1 is the setting both agree on
  (``tests/test_ingest_setting.py`` checks this against the installed engine).
"""

from __future__ import annotations

from functools import cache

import spglib

from ingest.errors import IngestError

N_SPACE_GROUPS = 230

#: Groups with two origin choices in the International Tables, Vol. A.
TWO_ORIGIN_GROUPS = frozenset(
    {48, 50, 59, 68, 70, 85, 86, 88, 125, 126, 129, 130, 133, 134, 137, 138, 141, 142}
    | {201, 203, 222, 224, 227, 228}
)
#: Two-origin groups stored with origin choice 2; the others use origin choice 1.
ORIGIN_CHOICE_2_GROUPS = TWO_ORIGIN_GROUPS - {85, 129, 130, 133, 134, 137, 138, 141, 142}

#: The paper's six cubic space groups (Yan et al. 2025).
PAPER_SPACE_GROUPS = (221, 223, 225, 227, 229, 230)


def check_space_group(number: int) -> int:
    """Return ``number`` if it is a space-group number 1-230, else raise :class:`IngestError`."""
    if isinstance(number, bool) or not isinstance(number, int):
        raise IngestError(f"space group {number!r} is not an integer (valid: 1-230)")
    if not 1 <= number <= N_SPACE_GROUPS:
        raise IngestError(f"unknown space group {number} (valid: 1-230)")
    return number


def parse_space_groups(text: str) -> list[int]:
    """Parse ``"1-230"``, ``"221,225"`` or ``"200-206,221"`` into sorted unique numbers.

    Raises
    ------
    IngestError
        On a malformed item or a number outside 1-230.
    """
    numbers: set[int] = set()
    for item in (part.strip() for part in str(text).split(",")):
        if not item:
            continue
        bounds = item.split("-")
        try:
            values = [int(b) for b in bounds]
        except ValueError:
            raise IngestError(
                f"space groups {text!r}: {item!r} is not a number or range like 1-230"
            ) from None
        if len(values) == 1:
            numbers.add(check_space_group(values[0]))
        elif len(values) == 2 and values[0] <= values[1]:
            lo, hi = (check_space_group(v) for v in values)
            numbers.update(range(lo, hi + 1))
        else:
            raise IngestError(f"space groups {text!r}: {item!r} is not a range like 1-230")
    if not numbers:
        raise IngestError(f"space groups {text!r}: no space group given (valid: 1-230)")
    return sorted(numbers)


@cache
def stored_hall_number(space_group: int) -> int:
    """The spglib Hall number of the setting ebsdlake stores ``space_group`` in."""
    check_space_group(space_group)
    halls = [h for h in range(1, 531) if spglib.get_spacegroup_type(h).number == space_group]
    if space_group in ORIGIN_CHOICE_2_GROUPS:
        return next(h for h in halls if spglib.get_spacegroup_type(h).choice == "2")
    return halls[0]


def origin_choice(space_group: int) -> int | None:
    """Origin choice (1 or 2) stored for a two-origin group; ``None`` for the other groups."""
    if space_group not in TWO_ORIGIN_GROUPS:
        return None
    return 2 if space_group in ORIGIN_CHOICE_2_GROUPS else 1


def crystal_system(space_group: int) -> str:
    """Crystal system of a space group number ("triclinic" ... "cubic")."""
    check_space_group(space_group)
    for upper, name in (
        (2, "triclinic"),
        (15, "monoclinic"),
        (74, "orthorhombic"),
        (142, "tetragonal"),
        (167, "trigonal"),
        (194, "hexagonal"),
    ):
        if space_group <= upper:
            return name
    return "cubic"


_FAMILY_LETTER = {
    "triclinic": "a",
    "monoclinic": "m",
    "orthorhombic": "o",
    "tetragonal": "t",
    "trigonal": "h",
    "hexagonal": "h",
    "cubic": "c",
}


def bravais_lattice(space_group: int, symbol: str) -> str:
    """Bravais lattice as a Pearson-style symbol (aP, mP, mC, oP, oC, oI, oF, tP, tI, hP, hR,
    cP, cI, cF); A/B-centred settings count as the one base-centred type ``C``.
    """
    system = crystal_system(space_group)
    centring = symbol.strip()[0].upper()
    if centring in "AB":
        centring = "C"
    return f"{_FAMILY_LETTER[system]}{centring}"
