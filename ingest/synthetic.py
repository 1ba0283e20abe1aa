"""Synthetic crystals for any of the 230 space groups (in the spirit of Schopmans et al. 2023).

For each requested group, atoms of ``n_elements`` elements drawn from a pool are placed on
randomly chosen Wyckoff positions of the group (pyxtal places them with random free
coordinates), the cell is scaled to a volume per atom drawn from a range, and the candidate is
kept only when no two atoms are closer than ``min_distance`` and spglib finds exactly the
requested space group again. Duplicates (pymatgen ``StructureMatcher``) are dropped. Everything
is drawn from ``numpy.random.default_rng([seed, space_group])``, so a group's structures depend
only on the seed and the parameters, not on which other groups were asked for.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

from ingest.elements import check_elements
from ingest.errors import IngestError, SymmetryError
from ingest.labels import DEFAULT_SYMPREC
from ingest.record import StructureRecord, build_record
from ingest.spacegroups import check_space_group

#: Default element pool: metals and semiconductors common in EBSD work.
DEFAULT_ELEMENTS = ("Al", "Si", "Ti", "V", "Cr", "Fe", "Co", "Ni", "Cu", "Nb", "Mo", "W")


@dataclass(frozen=True)
class SyntheticParams:
    """Generation parameters.

    Attributes
    ----------
    elements
        Element pool to draw from.
    n_elements
        Distinct elements per structure.
    volume_per_atom
        (min, max) volume per atom in Angstrom^3; each structure draws one value uniformly.
    max_wyckoff
        Most Wyckoff sites (orbits) per structure; at least one per element.
    min_distance
        Smallest allowed interatomic distance in Angstrom.
    max_attempts
        Candidates tried per requested structure before the group is reported as failed.
    max_atoms
        Most atoms in the conventional cell (None: no limit). Large cells have many
        reflections above ``dmin`` and cost the simulation dearly; this keeps cells small.
    max_axis_ratio
        Largest ratio of the longest to the shortest cell edge (None: no limit). Needle cells
        (a = 1.8 nm, c = 0.18 nm) asked de-ebsd for a 9.8 GB array at npx 64 and ran a
        24 GB node out of memory.
    symprec
        spglib distance tolerance in Angstrom for the symmetry check and the labels.
    """

    elements: tuple[str, ...] = DEFAULT_ELEMENTS
    n_elements: int = 2
    volume_per_atom: tuple[float, float] = (10.0, 30.0)
    max_wyckoff: int = 2
    min_distance: float = 1.8
    max_attempts: int = 40
    max_atoms: int | None = None
    max_axis_ratio: float | None = None
    symprec: float = DEFAULT_SYMPREC

    def validated(self) -> SyntheticParams:
        """Return a copy with canonical element symbols; raise :class:`IngestError` on bad
        values."""
        elements = tuple(dict.fromkeys(check_elements(self.elements, "--elements")))
        if not 1 <= self.n_elements <= len(elements):
            raise IngestError(
                f"--n-elements {self.n_elements}: must be 1-{len(elements)} "
                f"(the pool has {len(elements)} elements)"
            )
        low, high = self.volume_per_atom
        if not 0 < low <= high:
            raise IngestError(f"--volume-per-atom {low} {high}: need 0 < MIN <= MAX (Angstrom^3)")
        if self.max_wyckoff < self.n_elements:
            raise IngestError(
                f"--max-wyckoff {self.max_wyckoff}: must be >= --n-elements {self.n_elements}"
            )
        if not self.min_distance > 0:
            raise IngestError(f"--min-distance {self.min_distance}: must be > 0 Angstrom")
        if self.max_atoms is not None and self.max_atoms < 1:
            raise IngestError(f"--max-atoms {self.max_atoms}: must be >= 1")
        if self.max_axis_ratio is not None and self.max_axis_ratio < 1:
            raise IngestError(f"--max-axis-ratio {self.max_axis_ratio}: must be >= 1")
        if not self.symprec > 0:
            raise IngestError(f"--symprec {self.symprec}: must be > 0 Angstrom")
        return SyntheticParams(**{**asdict(self), "elements": elements})


@dataclass
class _GroupState:
    kept: list[Structure] = field(default_factory=list)


def structure_hash(structure: Structure) -> str:
    """10 hex digits identifying a standardised structure (lattice and sites, rounded)."""
    lattice = [round(x, 3) for x in structure.lattice.abc + structure.lattice.angles]
    sites = sorted(
        (site.specie.symbol, *[round(float(c) % 1.0, 4) % 1.0 for c in site.frac_coords])
        for site in structure
    )
    payload = json.dumps([lattice, sites], separators=(",", ":"))
    return hashlib.sha1(payload.encode()).hexdigest()[:10]


def _choose_sites(group, species: list[str], max_wyckoff: int, rng, force_general: bool):
    """Wyckoff letters per species: one or more orbits each, fixed-point orbits used once."""
    positions = list(group.Wyckoff_positions)
    n_sites = int(rng.integers(len(species), max_wyckoff + 1))
    owners = list(range(len(species))) + list(rng.integers(0, len(species), n_sites - len(species)))
    used_fixed: set[str] = set()
    chosen: list[list[str]] = [[] for _ in species]
    for slot, owner in enumerate(owners):
        wp = (
            positions[0]
            if (force_general and slot == 0)
            else positions[rng.integers(len(positions))]
        )
        if wp.get_dof() == 0:
            if wp.letter in used_fixed:
                continue
            used_fixed.add(wp.letter)
        chosen[owner].append(f"{wp.multiplicity}{wp.letter}")
    if any(not letters for letters in chosen):
        return None
    return chosen


def _candidate(group, params: SyntheticParams, rng, attempt: int, tolerances) -> Structure | None:
    """One random structure of pyxtal ``group`` or None when this draw fails."""
    from pyxtal import pyxtal

    space_group = int(group.number)
    species = [str(s) for s in rng.choice(params.elements, params.n_elements, replace=False)]
    sites = _choose_sites(group, species, params.max_wyckoff, rng, force_general=attempt % 3 == 2)
    if sites is None:
        return None
    counts = [sum(int(s[:-1]) for s in per_species) for per_species in sites]
    if params.max_atoms is not None and sum(counts) > params.max_atoms:
        return None
    crystal = pyxtal()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            crystal.from_random(
                3,
                space_group,
                species,
                counts,
                sites=sites,
                random_state=rng,
                max_count=10,
                tm=tolerances,
            )
        except Exception:  # pyxtal signals an impossible draw with several exception types
            return None
    if not crystal.valid:
        return None
    structure = crystal.to_pymatgen()
    if params.max_axis_ratio is not None:
        lengths = structure.lattice.abc
        if max(lengths) > params.max_axis_ratio * min(lengths):
            return None
    return _scaled(structure, rng.uniform(*params.volume_per_atom), params)


def _scaled(structure: Structure, volume_per_atom: float, params: SyntheticParams):
    """``structure`` scaled to ``volume_per_atom`` (Angstrom^3), or further up until no two
    atoms are closer than ``min_distance``; None when that needs more than the maximum volume
    per atom."""
    n_atoms = len(structure)
    structure.scale_lattice(volume_per_atom * n_atoms)
    nearest = _nearest_distance(structure)
    if nearest < params.min_distance:
        volume_per_atom *= (params.min_distance / nearest) ** 3 * (1 + 1e-6)
        if volume_per_atom > params.volume_per_atom[1]:
            return None
        structure.scale_lattice(volume_per_atom * n_atoms)
    return structure


def _nearest_distance(structure: Structure) -> float:
    """Shortest interatomic distance in Angstrom, periodic images included."""
    if len(structure) == 1:
        return float(min(structure.lattice.abc))
    distances = structure.distance_matrix[np.triu_indices(len(structure), 1)]
    return float(min(distances.min(), min(structure.lattice.abc)))


def generate_group(
    space_group: int, per_group: int, seed: int, params: SyntheticParams
) -> tuple[list[StructureRecord], str | None]:
    """Up to ``per_group`` distinct records of ``space_group``; the second item says why fewer
    were made (None when all were)."""
    from pyxtal.symmetry import Group
    from pyxtal.tolerance import Tol_matrix

    check_space_group(space_group)
    group = Group(space_group)
    tolerances = Tol_matrix(prototype="atomic", factor=1.0)
    rng = np.random.default_rng([int(seed), space_group])
    matcher = StructureMatcher()
    state = _GroupState()
    records: list[StructureRecord] = []
    attempt = 0
    while len(records) < per_group and attempt < params.max_attempts * per_group:
        attempt += 1
        structure = _candidate(group, params, rng, attempt % params.max_attempts, tolerances)
        if structure is None:
            continue
        if any(matcher.fit(structure, other) for other in state.kept):
            continue
        provenance = {
            "generator": "pyxtal random_crystal",
            "pyxtal_version": _pyxtal_version(),
            "seed": int(seed),
            "space_group_requested": space_group,
            "params": {
                k: list(v) if isinstance(v, tuple) else v for k, v in asdict(params).items()
            },
        }
        try:
            record = build_record("syn-tmp", structure, "synthetic", provenance, params.symprec)
        except SymmetryError:
            continue
        if record.labels.spacegroup_number != space_group:
            continue
        records.append(record.with_id(f"syn-{space_group}-{structure_hash(record.structure)}"))
        state.kept.append(structure)
    if len(records) < per_group:
        return records, (
            f"space group {space_group}: made {len(records)} of {per_group} after "
            f"{attempt} candidates (try a wider --volume-per-atom, a smaller --min-distance or "
            "more --max-wyckoff)"
        )
    return records, None


def _pyxtal_version() -> str:
    from importlib.metadata import version

    return version("pyxtal")


def generate(
    space_groups: Iterable[int],
    per_group: int = 1,
    seed: int = 0,
    params: SyntheticParams | None = None,
    on_reject: Callable[[str, str], None] | None = None,
) -> Iterator[StructureRecord]:
    """Yield ``per_group`` distinct synthetic records for each space group.

    Parameters
    ----------
    space_groups
        Space-group numbers (1-230).
    per_group
        Structures per group.
    seed
        Random seed; the same seed and parameters give the same structures and ids.
    params
        Generation parameters (:class:`SyntheticParams` defaults when None).
    on_reject
        Called with ``("syn-<sg>", reason)`` when a group yields fewer structures than asked;
        ``None`` raises instead.
    """
    params = (params or SyntheticParams()).validated()
    if per_group < 1:
        raise IngestError(f"--per-group {per_group}: must be >= 1")
    groups = [check_space_group(int(g)) for g in space_groups]
    for space_group in groups:
        records, problem = generate_group(space_group, per_group, seed, params)
        yield from records
        if problem is not None:
            if on_reject is None:
                raise IngestError(problem)
            on_reject(f"syn-{space_group}", problem)
