"""Stored structures to de-ebsd crystals, in the record's explicit setting.

The lake stores each structure's asymmetric unit in its conventional standard setting
(``setting``: Hall number, origin choice, axes); :class:`lake.StructureRecord` reads it.
de-ebsd's :class:`~de_ebsd.Crystal` expands the asymmetric unit with the International Tables
operators of the space group, so the only work here is to check that the record's setting is
one de-ebsd implements, and hand over lattice (nm, degrees), sites and per-site Debye-Waller
factors B (nm^2). This is the one builder of a structure's crystal (simulation, EMsoft inputs,
imports, checks).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lake.errors import LakeFormatError
from lake.structures import StructureRecord
from simulate.errors import StructureError

#: B (nm^2) used for a site whose record gives none: de-ebsd's and EMsoft's usual default.
FALLBACK_B_NM2 = 0.005

#: A structure as engines accept it: a typed record, or its flat lake attributes.
StructureLike = StructureRecord | Mapping[str, Any]


def as_record(structure: StructureLike) -> StructureRecord:
    """The :class:`~lake.StructureRecord` of ``structure`` (flat attributes are read with
    their ``material_id``, else named by their formula).

    Raises
    ------
    StructureError
        A lattice, site or space-group field that is missing or malformed, named.
    """
    try:
        if isinstance(structure, StructureRecord):
            return structure.require_geometry()
        material_id = str(structure.get("material_id") or "")
        return StructureRecord.from_attrs(material_id, structure).require_geometry()
    except LakeFormatError as exc:
        raise StructureError(str(exc)) from None


def site_bfactors(structure: StructureLike) -> list[float]:
    """The record's own per-site B in nm^2 (fallback :data:`FALLBACK_B_NM2` where absent)."""
    return [
        site.B_nm2 if site.B_nm2 is not None else FALLBACK_B_NM2
        for site in as_record(structure).sites
    ]


def check_setting(record: StructureRecord) -> None:
    """Raise :class:`StructureError` when the record's setting is one de-ebsd cannot expand.

    de-ebsd tabulates each space group in its ITA standard setting (unique axis b for
    monoclinic, hexagonal axes for rhombohedral groups, either origin for the two-origin
    groups). A record stored in another setting (Hall number not the standard one) would be
    expanded with the wrong operators and give a plausible but wrong master, so it is refused.
    """
    hall = record.hall_number
    if hall is None:
        return
    import spglib

    kind = spglib.get_spacegroup_type(hall) if 1 <= hall <= 530 else None
    if kind is None:
        raise StructureError(f"{record.name}: setting hall_number {hall} unknown")
    number = record.spacegroup_number or int(kind.number)
    if int(kind.number) != number:
        raise StructureError(
            f"{record.name}: setting hall_number {hall} is not a setting of space group {number}"
        )
    choice = str(kind.choice)
    if choice == "R":
        raise StructureError(
            f"{record.name}: rhombohedral axes (Hall {hall}) are not supported "
            "by the dynamical engine; store the cell on hexagonal axes"
        )
    allowed = {"", "1", "2", "H", "b", "b1"}
    if choice not in allowed:
        raise StructureError(
            f"{record.name}: setting {kind.international_full} (Hall {hall}, "
            f"choice {choice!r}) is not the ITA standard setting the dynamical engine expands"
        )


def build_crystal(structure: StructureLike, bfactors_nm2: Sequence[float] | None = None):
    """The de-ebsd :class:`~de_ebsd.Crystal` of a stored structure under one B-factor set.

    Parameters
    ----------
    structure
        A :class:`lake.StructureRecord` (or the flat attributes it reads: ``spacegroup_number``,
        ``lattice_nm`` {a, b, c (nm), alpha, beta, gamma (degrees)}, ``sites`` [{element, xyz,
        occupancy, B_nm2}] (the asymmetric unit), optionally ``setting`` {hall_number,
        origin_choice}).
    bfactors_nm2
        Per-site Debye-Waller B in nm^2 overriding the record's (one per site), as a B-factor
        variant does; ``None`` keeps the record's own.

    Raises
    ------
    StructureError
        A missing or malformed field, or a setting the engine does not implement.
    """
    import de_ebsd

    from simulate.crystal_fixes import Crystal

    record = as_record(structure)
    label = record.name
    check_setting(record)
    number = record.spacegroup_number
    if number is None:
        raise StructureError(f"{label}: field 'spacegroup_number' is None, not 1-230")
    lattice = record.lattice_nm
    lengths = (lattice["a"], lattice["b"], lattice["c"])
    if min(lengths) <= 0 or max(lengths) > 20:
        raise StructureError(
            f"{label}: lattice lengths {lengths[0]}, {lengths[1]}, {lengths[2]} are not in "
            "(0, 20] nm"
        )
    if not record.sites:
        raise StructureError(f"{label}: field 'sites' is empty")
    b_values = list(bfactors_nm2) if bfactors_nm2 is not None else site_bfactors(record)
    if len(b_values) != len(record.sites):
        raise StructureError(
            f"{label}: {len(b_values)} B-factors given for {len(record.sites)} sites"
        )
    atom_sites = [
        de_ebsd.AtomSite(
            element=_element(site.element, label, index),
            position=site.xyz,
            occupancy=site.occupancy,
            debye_waller=float(b),
        )
        for index, (site, b) in enumerate(zip(record.sites, b_values, strict=True))
    ]
    try:
        crystal = Crystal(
            *(lattice[k] for k in ("a", "b", "c", "alpha", "beta", "gamma")),
            space_group=number,
            sites=atom_sites,
            origin=record.origin_choice,
        )
    except (ValueError, KeyError) as exc:
        raise StructureError(f"{label}: de-ebsd cannot build the crystal: {exc}") from None
    _check_asymmetric_unit(crystal, label)
    return crystal


def _element(raw: str, label: str, index: int) -> str:
    from de_ebsd.crystal import atomic_number

    match = re.match(r"[A-Z][a-z]?", raw.strip())
    symbol = match.group(0) if match else raw
    try:
        atomic_number(symbol)
    except ValueError:
        raise StructureError(f"{label}: site {index} element {raw!r} is not known") from None
    return symbol


def _check_asymmetric_unit(crystal, label: str) -> None:
    """Refuse records listing symmetry-equivalent atoms as separate sites (double counting)."""
    seen: list[tuple[int, np.ndarray, str, float]] = []
    for index, (site, orbit) in enumerate(zip(crystal.sites, crystal.positions, strict=True)):
        for other, other_orbit, element, occupancy in seen:
            diff = (orbit[:, None, :] - other_orbit[None, :, :] + 0.5) % 1.0 - 0.5
            overlap = np.all(np.abs(diff) < 1e-3, axis=-1).any()
            same_kind = element == site.element and occupancy == site.occupancy
            if overlap and same_kind:
                raise StructureError(
                    f"{label}: sites {other} and {index} are symmetry-equivalent; the record "
                    "must list the asymmetric unit (one site per Wyckoff orbit)"
                )
        seen.append((index, orbit, site.element, site.occupancy))
