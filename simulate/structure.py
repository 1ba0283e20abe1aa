"""Structure records (lake attributes) to de-ebsd crystals, in the record's explicit setting.

The lake stores each structure's asymmetric unit in its conventional standard setting
(``setting``: Hall number, origin choice, axes). de-ebsd's :class:`~de_ebsd.Crystal` expands
the asymmetric unit with the International Tables operators of the space group, so the only
work here is to read the record, check that its setting is one de-ebsd implements, and hand
over lattice (nm, degrees), sites and per-site Debye-Waller factors B (nm^2).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from simulate.errors import StructureError

#: B (nm^2) used for a site whose record gives none: de-ebsd's and EMsoft's usual default.
FALLBACK_B_NM2 = 0.005

_LATTICE_KEYS = ("a", "b", "c", "alpha", "beta", "gamma")


def material_label(structure: Mapping[str, Any]) -> str:
    """A short name for messages: the material id when present, else the formula."""
    return str(structure.get("material_id") or structure.get("formula") or "structure")


def site_bfactors(structure: Mapping[str, Any]) -> list[float]:
    """The record's own per-site B in nm^2 (fallback :data:`FALLBACK_B_NM2` where absent)."""
    out = []
    for site in _sites(structure):
        value = site.get("B_nm2")
        try:
            b = float(value) if value is not None else FALLBACK_B_NM2
        except (TypeError, ValueError):
            b = FALLBACK_B_NM2
        out.append(b if np.isfinite(b) and b > 0 else FALLBACK_B_NM2)
    return out


def origin_choice(structure: Mapping[str, Any]) -> int:
    """Origin choice (1 or 2) from the record's ``setting``; 2 when it does not say.

    Only the 24 two-origin groups depend on it; de-ebsd's default (2, the inversion centre)
    is also the ITA standard that ``ingest`` stores.
    """
    setting = structure.get("setting") or {}
    if not isinstance(setting, Mapping):
        return 2
    value = setting.get("origin_choice", setting.get("origin"))
    if value in (1, "1"):
        return 1
    return 2


def check_setting(structure: Mapping[str, Any]) -> None:
    """Raise :class:`StructureError` when the record's setting is one de-ebsd cannot expand.

    de-ebsd tabulates each space group in its ITA standard setting (unique axis b for
    monoclinic, hexagonal axes for rhombohedral groups, either origin for the two-origin
    groups). A record stored in another setting (Hall number not the standard one) would be
    expanded with the wrong operators and give a plausible but wrong master, so it is refused.
    """
    setting = structure.get("setting") or {}
    if not isinstance(setting, Mapping) or setting.get("hall_number") in (None, ""):
        return
    import spglib

    hall = int(setting["hall_number"])
    kind = spglib.get_spacegroup_type(hall) if 1 <= hall <= 530 else None
    if kind is None:
        raise StructureError(f"{material_label(structure)}: setting hall_number {hall} unknown")
    number = int(structure.get("spacegroup_number") or kind.number)
    if int(kind.number) != number:
        raise StructureError(
            f"{material_label(structure)}: setting hall_number {hall} is not a setting of "
            f"space group {number}"
        )
    choice = str(kind.choice)
    if choice == "R":
        raise StructureError(
            f"{material_label(structure)}: rhombohedral axes (Hall {hall}) are not supported "
            "by the dynamical engine; store the cell on hexagonal axes"
        )
    allowed = {"", "1", "2", "H", "b", "b1"}
    if choice not in allowed:
        raise StructureError(
            f"{material_label(structure)}: setting {kind.international_full} (Hall {hall}, "
            f"choice {choice!r}) is not the ITA standard setting the dynamical engine expands"
        )


def build_crystal(structure: Mapping[str, Any], bfactors_nm2: Sequence[float] | None = None):
    """A de-ebsd :class:`~de_ebsd.Crystal` from a lake structure record.

    Parameters
    ----------
    structure
        Flat structure attributes: ``spacegroup_number``, ``lattice_nm`` {a, b, c (nm),
        alpha, beta, gamma (degrees)}, ``sites`` [{element, xyz, occupancy, B_nm2}] (the
        asymmetric unit) and optionally ``setting`` {hall_number, origin_choice}.
    bfactors_nm2
        Per-site Debye-Waller B in nm^2 overriding the record's (one per site), as a B-factor
        variant does; ``None`` keeps the record's own.

    Raises
    ------
    StructureError
        A missing or malformed field, or a setting the engine does not implement.
    """
    import de_ebsd

    label = material_label(structure)
    check_setting(structure)
    number = _space_group(structure)
    lattice = _lattice(structure)
    sites = _sites(structure)
    if not sites:
        raise StructureError(f"{label}: field 'sites' is empty")
    b_values = list(bfactors_nm2) if bfactors_nm2 is not None else site_bfactors(structure)
    if len(b_values) != len(sites):
        raise StructureError(f"{label}: {len(b_values)} B-factors given for {len(sites)} sites")
    atom_sites = []
    for index, (site, b) in enumerate(zip(sites, b_values, strict=True)):
        atom_sites.append(
            de_ebsd.AtomSite(
                element=_element(site, label, index),
                position=_position(site, label, index),
                occupancy=_occupancy(site, label, index),
                debye_waller=float(b),
            )
        )
    try:
        crystal = de_ebsd.Crystal(
            *(lattice[k] for k in _LATTICE_KEYS),
            space_group=number,
            sites=atom_sites,
            origin=origin_choice(structure),
        )
    except (ValueError, KeyError) as exc:
        raise StructureError(f"{label}: de-ebsd cannot build the crystal: {exc}") from None
    _check_asymmetric_unit(crystal, label)
    return crystal


def _space_group(structure: Mapping[str, Any]) -> int:
    value = structure.get("spacegroup_number")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise StructureError(
            f"{material_label(structure)}: field 'spacegroup_number' is {value!r}, not 1-230"
        ) from None
    if not 1 <= number <= 230:
        raise StructureError(
            f"{material_label(structure)}: field 'spacegroup_number' is {number}, not 1-230"
        )
    return number


def _lattice(structure: Mapping[str, Any]) -> dict[str, float]:
    label = material_label(structure)
    lattice = structure.get("lattice_nm")
    if not isinstance(lattice, Mapping):
        raise StructureError(f"{label}: field 'lattice_nm' is missing (a, b, c in nm, angles)")
    out = {}
    for key in _LATTICE_KEYS:
        try:
            out[key] = float(lattice[key])
        except (KeyError, TypeError, ValueError):
            raise StructureError(
                f"{label}: field 'lattice_nm.{key}' is missing or not a number"
            ) from None
    if min(out["a"], out["b"], out["c"]) <= 0 or max(out["a"], out["b"], out["c"]) > 20:
        raise StructureError(
            f"{label}: lattice lengths {out['a']}, {out['b']}, {out['c']} are not in (0, 20] nm"
        )
    return out


def _sites(structure: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    sites = structure.get("sites")
    if not isinstance(sites, (list, tuple)):
        raise StructureError(f"{material_label(structure)}: field 'sites' is missing")
    return list(sites)


def _element(site: Mapping[str, Any], label: str, index: int) -> str:
    from de_ebsd.crystal import atomic_number

    raw = str(site.get("element", ""))
    match = re.match(r"[A-Z][a-z]?", raw.strip())
    symbol = match.group(0) if match else raw
    try:
        atomic_number(symbol)
    except ValueError:
        raise StructureError(f"{label}: site {index} element {raw!r} is not known") from None
    return symbol


def _position(site: Mapping[str, Any], label: str, index: int) -> tuple[float, float, float]:
    try:
        xyz = tuple(float(v) for v in site["xyz"])
    except (KeyError, TypeError, ValueError):
        raise StructureError(
            f"{label}: site {index} field 'xyz' is missing or not numbers"
        ) from None
    if len(xyz) != 3 or not all(np.isfinite(xyz)):
        raise StructureError(f"{label}: site {index} field 'xyz' must be 3 finite numbers")
    return xyz  # type: ignore[return-value]


def _occupancy(site: Mapping[str, Any], label: str, index: int) -> float:
    value = site.get("occupancy", 1.0)
    try:
        occupancy = float(value)
    except (TypeError, ValueError):
        raise StructureError(f"{label}: site {index} occupancy {value!r} is not a number") from None
    if not 0 < occupancy <= 1:
        raise StructureError(f"{label}: site {index} occupancy {occupancy} is not in (0, 1]")
    return occupancy


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
