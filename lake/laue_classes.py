"""Laue class and crystal system of a crystallographic point group.

An EBSD pattern obeys Friedel's law to a good approximation, so what it shows of a crystal's
symmetry is the point group plus an inversion centre: the Laue class (11 of them). The lake
stores the point group of each structure (spglib's Hermann-Mauguin symbol); the Laue class is
derived from it here, so lakes written before this label existed carry it too.
"""

from __future__ import annotations

#: Laue class -> the point groups it contains (spglib's symbols; ``-4m2``/``-62m`` settings
#: included as spglib may name them either way).
LAUE_CLASS_MEMBERS: dict[str, tuple[str, ...]] = {
    "-1": ("1", "-1"),
    "2/m": ("2", "m", "2/m"),
    "mmm": ("222", "mm2", "mmm"),
    "4/m": ("4", "-4", "4/m"),
    "4/mmm": ("422", "4mm", "-42m", "-4m2", "4/mmm"),
    "-3": ("3", "-3"),
    "-3m": ("32", "3m", "-3m", "312", "321", "31m", "3m1", "-31m", "-3m1"),
    "6/m": ("6", "-6", "6/m"),
    "6/mmm": ("622", "6mm", "-6m2", "-62m", "6/mmm"),
    "m-3": ("23", "m-3"),
    "m-3m": ("432", "-43m", "m-3m"),
}

#: Laue class -> crystal system (the trigonal system has two Laue classes, and so on).
LAUE_CLASS_SYSTEM: dict[str, str] = {
    "-1": "triclinic",
    "2/m": "monoclinic",
    "mmm": "orthorhombic",
    "4/m": "tetragonal",
    "4/mmm": "tetragonal",
    "-3": "trigonal",
    "-3m": "trigonal",
    "6/m": "hexagonal",
    "6/mmm": "hexagonal",
    "m-3": "cubic",
    "m-3m": "cubic",
}

_LAUE_OF_POINT_GROUP = {
    point_group: laue for laue, members in LAUE_CLASS_MEMBERS.items() for point_group in members
}


def laue_class(point_group: str) -> str:
    """The Laue class of a point group symbol (``"-43m"`` -> ``"m-3m"``).

    Raises
    ------
    ValueError
        ``point_group`` is not one of the 32 crystallographic point groups.
    """
    symbol = str(point_group).strip()
    if symbol not in _LAUE_OF_POINT_GROUP:
        raise ValueError(f"point group {point_group!r}: not one of the 32 crystallographic ones")
    return _LAUE_OF_POINT_GROUP[symbol]


def crystal_system_of_laue(laue: str) -> str:
    """The crystal system a Laue class belongs to (``"-3m"`` -> ``"trigonal"``)."""
    if laue not in LAUE_CLASS_SYSTEM:
        raise ValueError(f"Laue class {laue!r}: not one of {', '.join(LAUE_CLASS_SYSTEM)}")
    return LAUE_CLASS_SYSTEM[laue]


#: Laue class -> its space-group numbers (the International Tables order them by Laue class).
LAUE_CLASS_SPACE_GROUPS: dict[str, range] = {
    "-1": range(1, 3),
    "2/m": range(3, 16),
    "mmm": range(16, 75),
    "4/m": range(75, 89),
    "4/mmm": range(89, 143),
    "-3": range(143, 149),
    "-3m": range(149, 168),
    "6/m": range(168, 177),
    "6/mmm": range(177, 195),
    "m-3": range(195, 207),
    "m-3m": range(207, 231),
}


def laue_class_of_space_group(number: int) -> str:
    """The Laue class of space group ``number`` (1-230): ``225`` -> ``"m-3m"``."""
    for laue, numbers in LAUE_CLASS_SPACE_GROUPS.items():
        if int(number) in numbers:
            return laue
    raise ValueError(f"space group {number!r}: not in 1-230")
