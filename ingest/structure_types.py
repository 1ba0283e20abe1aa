"""Hypothetical crystals decorating classic cubic structure types with elements from a pool.

Each structure type (Strukturbericht designation) is a space group with Wyckoff sites that
belong to chemical roles A, B, C. Decorating the roles with distinct elements gives an ordered
crystal whose true space group is the type's; giving every site one element gives the
compositionally-disordered parent (e.g. L1_2 Cu3Au, Pm-3m, orders an fcc Fm-3m parent; B2 CsCl,
Pm-3m, a bcc Im-3m one; B3 zincblende, F-43m, diamond Fd-3m). Electrons barely tell neighbours
in the periodic table apart, so with a pool of neighbouring elements the ordering is nearly
invisible in the patterns: this is the set-up in which Yan et al. 2025 relabel to the disordered
space group. Everything is drawn from ``numpy.random.default_rng([seed, type index])``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Lattice, Structure

from ingest.elements import check_elements
from ingest.errors import IngestError
from ingest.labels import DEFAULT_SYMPREC
from ingest.record import StructureRecord, build_record
from ingest.wyckoff import expand_orbit, hall_number_for

#: Default pool: 3d transition metals, neighbours in Z (22-29) so that ordering is weak.
NEIGHBOUR_ELEMENTS = ("Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu")


@dataclass(frozen=True)
class StructureType:
    """A cubic structure type: space group, origin choice and (role, fractional xyz) sites.

    ``disordered`` is the space group of the parent with every site occupied by one element
    (checked by the tests against spglib, not trusted).
    """

    name: str
    prototype: str
    space_group: int
    origin: int | None
    sites: tuple[tuple[str, tuple[float, float, float]], ...]
    disordered: int

    @property
    def roles(self) -> tuple[str, ...]:
        """Distinct chemical roles in site order (``("A",)``, ``("A", "B")``...)."""
        return tuple(dict.fromkeys(role for role, _ in self.sites))


_Q, _H = 0.25, 0.5
#: The bundled structure types, ordered ones next to the parents they order.
STRUCTURE_TYPES: dict[str, StructureType] = {
    t.name: t
    for t in (
        StructureType("A1", "Cu", 225, None, (("A", (0, 0, 0)),), 225),
        StructureType("A2", "W", 229, None, (("A", (0, 0, 0)),), 229),
        StructureType("A4", "C (diamond)", 227, 2, (("A", (1 / 8, 1 / 8, 1 / 8)),), 227),
        StructureType("Ah", "alpha-Po", 221, None, (("A", (0, 0, 0)),), 221),
        StructureType("L1_2", "Cu3Au", 221, None, (("A", (0, _H, _H)), ("B", (0, 0, 0))), 225),
        StructureType("B2", "CsCl", 221, None, (("A", (0, 0, 0)), ("B", (_H, _H, _H))), 229),
        StructureType("B1", "NaCl", 225, None, (("A", (0, 0, 0)), ("B", (_H, _H, _H))), 221),
        StructureType(
            "B3", "ZnS (sphalerite)", 216, None, (("A", (0, 0, 0)), ("B", (_Q,) * 3)), 227
        ),
        StructureType(
            "D0_3", "BiF3", 225, None, (("A", (_Q,) * 3), ("A", (_H,) * 3), ("B", (0, 0, 0))), 229
        ),
        StructureType(
            "L2_1",
            "Cu2MnAl",
            225,
            None,
            (("A", (_Q,) * 3), ("B", (0, 0, 0)), ("C", (_H,) * 3)),
            229,
        ),
        StructureType("C1", "CaF2", 225, None, (("A", (0, 0, 0)), ("B", (_Q,) * 3)), 225),
        StructureType("A15", "Cr3Si", 223, None, (("A", (_Q, 0, _H)), ("B", (0, 0, 0))), 223),
    )
}


def parse_structure_types(names: Iterable[str] | None) -> list[StructureType]:
    """The named types (all when ``names`` is None); unknown names raise with the valid list."""
    if names is None:
        return list(STRUCTURE_TYPES.values())
    chosen = []
    for name in names:
        if name not in STRUCTURE_TYPES:
            raise IngestError(
                f"--types: unknown structure type {name!r}; valid: {', '.join(STRUCTURE_TYPES)}"
            )
        chosen.append(STRUCTURE_TYPES[name])
    return chosen


def decorated_structure(
    stype: StructureType, elements: dict[str, str], volume_per_atom: float
) -> Structure:
    """The full conventional cell of ``stype`` with role -> element ``elements``, scaled to
    ``volume_per_atom`` (Angstrom^3)."""
    hall = hall_number_for(stype.space_group, stype.origin)
    species: list[str] = []
    coords: list[np.ndarray] = []
    for role, xyz in stype.sites:
        orbit = expand_orbit(hall, tuple(float(c) for c in xyz))
        species += [elements[role]] * len(orbit)
        coords += list(orbit)
    a_angstrom = (volume_per_atom * len(species)) ** (1 / 3)
    return Structure(Lattice.cubic(a_angstrom), species, coords)


def _assignments(stype: StructureType, pool: tuple[str, ...], count: int, rng) -> list[dict]:
    """Up to ``count`` distinct role -> element maps (distinct elements within a crystal)."""
    roles = stype.roles
    if len(roles) > len(pool):
        return []
    seen: set[tuple[str, ...]] = set()
    chosen: list[dict] = []
    for _ in range(50 * count):
        if len(chosen) == count:
            break
        picked = tuple(str(e) for e in rng.choice(pool, len(roles), replace=False))
        if picked in seen and len(seen) < math.perm(len(pool), len(roles)):
            continue
        seen.add(picked)
        chosen.append(dict(zip(roles, picked, strict=True)))
    return chosen


def generate_decorated(
    types: Iterable[StructureType],
    per_type: int,
    seed: int,
    elements: Iterable[str] = NEIGHBOUR_ELEMENTS,
    volume_per_atom: tuple[float, float] = (11.0, 14.0),
    symprec: float = DEFAULT_SYMPREC,
    on_reject: Callable[[str, str], None] | None = None,
) -> Iterator[StructureRecord]:
    """Yield ``per_type`` decorated crystals of each type as labelled records.

    Element maps are distinct while the pool allows (a one-role type has as many maps as
    elements; beyond that the maps repeat with another volume per atom, so each record is a
    distinct crystal). Ids are ``dec-<type>-<formula>-<k>``.

    Parameters
    ----------
    types
        Structure types (see :data:`STRUCTURE_TYPES`).
    per_type
        Crystals per type.
    seed
        Random seed.
    elements
        Element pool.
    volume_per_atom
        (min, max) Angstrom^3 per atom; each crystal draws one value uniformly.
    symprec
        spglib tolerance in Angstrom for the labels.
    on_reject
        Called with ``(material_id, reason)`` for a crystal whose symmetry is not the type's;
        None raises instead.
    """
    pool = tuple(dict.fromkeys(check_elements(tuple(elements), "--elements")))
    low, high = volume_per_atom
    if not 0 < low <= high:
        raise IngestError(f"--volume-per-atom {low} {high}: need 0 < MIN <= MAX (Angstrom^3)")
    if per_type < 1:
        raise IngestError(f"--per-type {per_type}: must be >= 1")
    for index, stype in enumerate(types):
        rng = np.random.default_rng([int(seed), index, stype.space_group])
        maps = _assignments(stype, pool, per_type, rng)
        if not maps:
            reason = f"needs {len(stype.roles)} distinct elements, the pool has {len(pool)}"
            if on_reject is None:
                raise IngestError(f"{stype.name}: {reason}")
            on_reject(f"dec-{stype.name}", reason)
            continue
        for k, mapping in enumerate(maps):
            structure = decorated_structure(stype, mapping, float(rng.uniform(low, high)))
            material_id = f"dec-{stype.name}-{structure.composition.reduced_formula}-{k}"
            provenance = {
                "source": "ebsdlake decorated structure types (ingest/structure_types.py)",
                "structure_type": stype.name,
                "prototype": stype.prototype,
                "roles": mapping,
                "seed": int(seed),
                "a_angstrom": round(float(structure.lattice.a), 6),
            }
            try:
                record = build_record(
                    material_id, structure, "decorated", provenance, symprec=symprec
                )
            except IngestError as exc:
                if on_reject is None:
                    raise
                on_reject(material_id, str(exc))
                continue
            if record.labels.spacegroup_number != stype.space_group:
                reason = (
                    f"found space group {record.labels.spacegroup_number}, "
                    f"type {stype.name} is {stype.space_group}"
                )
                if on_reject is None:
                    raise IngestError(f"{material_id}: {reason}")
                on_reject(material_id, reason)
                continue
            yield record


def structure_type_of(provenance: dict) -> str | None:
    """The bundled structure type a stored structure is of, read from its provenance: a
    decorated crystal's ``structure_type``, or the Strukturbericht name in parentheses of a
    prototype's ``prototype`` ("CsCl (B2)" -> "B2"); None for any other structure."""
    named = provenance.get("structure_type")
    if named in STRUCTURE_TYPES:
        return str(named)
    text = str(provenance.get("prototype") or "")
    inner = text[text.rfind("(") + 1 : text.rfind(")")] if text.endswith(")") else ""
    return inner if inner in STRUCTURE_TYPES else None
