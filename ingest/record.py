"""``StructureRecord``: one normalised, labelled structure ready for the lake, and back.

A record is built from any ordered pymatgen ``Structure`` by :func:`build_record`, which puts it
in its stored standard setting (:mod:`ingest.standardize`) and computes the true and the
compositionally-disordered labels (:mod:`ingest.labels`). :meth:`StructureRecord.to_lake` gives
the ``(cif, attrs)`` pair ``Lake.put_structure`` stores; :meth:`StructureRecord.from_lake` and
:func:`structure_from_lake` read a stored structure back (what ``simulate`` needs).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

from pymatgen.core import Structure
from pymatgen.io.cif import CifParser

from ingest.cif_text import standard_cif
from ingest.elements import check_elements
from ingest.errors import DisorderedStructureError, IngestError
from ingest.labels import (
    DEFAULT_ANGLE_TOLERANCE,
    DEFAULT_SYMPREC,
    SymmetryLabels,
    disordered_labels,
    labels_from_dataset,
)
from ingest.standardize import Site, spglib_cell, standardize
from lake.structures import DISORDERED_PREFIX

SOURCES = ("mp", "prototype", "synthetic", "decorated", "cif")


@dataclass(frozen=True)
class StructureRecord:
    """A structure in its stored setting with its labels and provenance.

    Attributes
    ----------
    material_id
        Lake id (``mp-149``, ``proto-NiAl``, ``syn-225-<hash>``, ``dec-B2-CoFe-0``,
        ``cif-<name>-<hash>``).
    structure
        Conventional standard cell (pymatgen; Angstrom).
    source
        One of ``"mp"``, ``"prototype"``, ``"synthetic"``, ``"decorated"``, ``"cif"``.
    labels
        True symmetry labels.
    disordered
        Labels of the compositionally-disordered structure.
    setting
        Hall number, Hall symbol, origin choice and axes of the stored setting.
    sites
        Asymmetric unit in that setting.
    provenance
        Where the structure came from (query, database version, file, seed, citation ...).
    cif
        The stored CIF text.
    symprec
        spglib distance tolerance used for the labels, Angstrom.
    angle_tolerance
        spglib angle tolerance used for the labels, degrees.
    name
        Optional human name (e.g. ``"Ni3Al"`` for a prototype).
    """

    material_id: str
    structure: Structure
    source: str
    labels: SymmetryLabels
    disordered: SymmetryLabels
    setting: dict[str, Any]
    sites: tuple[Site, ...]
    provenance: dict[str, Any] = field(default_factory=dict)
    cif: str = ""
    symprec: float = DEFAULT_SYMPREC
    angle_tolerance: float = DEFAULT_ANGLE_TOLERANCE
    name: str | None = None

    @property
    def formula(self) -> str:
        """Reduced formula, e.g. ``"AlNi3"``."""
        return self.structure.composition.reduced_formula

    def with_id(self, material_id: str) -> StructureRecord:
        """The same record under another id (the CIF's data block renamed too)."""
        header, _, rest = self.cif.partition("\n")
        cif = f"data_{material_id}\n{rest}" if header.startswith("data_") else self.cif
        return replace(self, material_id=material_id, cif=cif)

    def to_lake(self) -> tuple[str, dict[str, Any]]:
        """The ``(cif, attrs)`` that ``Lake.put_structure(material_id, cif=..., attrs=...)``
        stores; attribute keys follow docs/ARCHITECTURE.md."""
        lattice = self.structure.lattice
        attrs: dict[str, Any] = {
            "formula": self.formula,
            "source": self.source,
            **self.labels.as_attrs(),
            **self.disordered.as_attrs(DISORDERED_PREFIX),
            "setting": dict(self.setting),
            "lattice_nm": {
                "a": lattice.a / 10.0,
                "b": lattice.b / 10.0,
                "c": lattice.c / 10.0,
                "alpha": lattice.alpha,
                "beta": lattice.beta,
                "gamma": lattice.gamma,
            },
            "volume_nm3": lattice.volume / 1000.0,
            "num_atoms": len(self.structure),
            "sites": [site.as_attrs() for site in self.sites],
            "symmetry_tolerance": {
                "symprec_angstrom": self.symprec,
                "angle_tolerance_deg": self.angle_tolerance,
            },
            "provenance": dict(self.provenance),
        }
        if self.name:
            attrs["name"] = self.name
        return self.cif, attrs

    @classmethod
    def from_lake(cls, material_id: str, attrs_with_cif: dict[str, Any]) -> StructureRecord:
        """Rebuild a record from what ``Lake.structure(material_id)`` returns."""
        attrs = attrs_with_cif
        tolerance = attrs.get("symmetry_tolerance", {})
        return cls(
            material_id=material_id,
            structure=structure_from_lake(attrs),
            source=attrs["source"],
            labels=SymmetryLabels.from_attrs(attrs),
            disordered=SymmetryLabels.from_attrs(attrs, DISORDERED_PREFIX),
            setting=dict(attrs["setting"]),
            sites=tuple(
                Site(
                    element=s["element"],
                    wyckoff=s["wyckoff"],
                    multiplicity=int(s["multiplicity"]),
                    xyz=tuple(float(x) for x in s["xyz"]),
                    occupancy=float(s["occupancy"]),
                    B_nm2=float(s["B_nm2"]),
                )
                for s in attrs["sites"]
            ),
            provenance=dict(attrs.get("provenance", {})),
            cif=attrs["cif"],
            symprec=float(tolerance.get("symprec_angstrom", DEFAULT_SYMPREC)),
            angle_tolerance=float(tolerance.get("angle_tolerance_deg", DEFAULT_ANGLE_TOLERANCE)),
            name=attrs.get("name"),
        )


def structure_from_lake(attrs_with_cif: dict[str, Any]) -> Structure:
    """The full conventional cell (pymatgen, Angstrom) of a stored structure, from its CIF."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parser = CifParser(io.StringIO(attrs_with_cif["cif"]))
        structures = parser.parse_structures(primitive=False)
    if not structures:
        raise IngestError(f"stored structure {attrs_with_cif.get('material_id')}: unreadable CIF")
    return structures[0]


def build_record(
    material_id: str,
    structure: Structure,
    source: str,
    provenance: dict[str, Any] | None = None,
    symprec: float = DEFAULT_SYMPREC,
    angle_tolerance: float = DEFAULT_ANGLE_TOLERANCE,
    name: str | None = None,
) -> StructureRecord:
    """Normalise ``structure`` and label it.

    Parameters
    ----------
    material_id
        Lake id of the structure.
    structure
        Any ordered structure (any cell, any setting; Angstrom). Per-site ``B_nm2`` site
        properties are kept; other sites get the default B.
    source
        One of :data:`SOURCES`.
    provenance
        Free-form JSON-able provenance.
    symprec
        spglib distance tolerance in Angstrom for the true and the disordered labels.
    angle_tolerance
        spglib angle tolerance in degrees.
    name
        Optional human-readable name.

    Raises
    ------
    DisorderedStructureError
        A site is partially occupied or shared by several species.
    IngestError
        Unknown element, empty structure or unknown source.
    SymmetryError
        spglib finds no symmetry at this tolerance.
    """
    if source not in SOURCES:
        raise IngestError(f"{material_id}: unknown source {source!r} (valid: {SOURCES})")
    if len(structure) == 0:
        raise IngestError(f"{material_id}: the structure has no atoms")
    if not structure.is_ordered:
        mixed = next(site for site in structure if not site.is_ordered)
        raise DisorderedStructureError(
            f"{material_id}: site {mixed.species.formula} at {mixed.frac_coords.round(4).tolist()}"
            " is partially occupied or mixed; ebsdlake stores ordered structures only"
        )
    check_elements([site.specie.symbol for site in structure], what=material_id)
    cell = standardize(structure, symprec, angle_tolerance, what=material_id)
    true_labels = labels_from_dataset(cell.dataset)
    disordered = disordered_labels(
        spglib_cell(cell.structure), symprec, angle_tolerance, what=material_id
    )
    return StructureRecord(
        material_id=material_id,
        structure=cell.structure,
        source=source,
        labels=true_labels,
        disordered=disordered,
        setting=cell.setting(),
        sites=cell.sites,
        provenance=dict(provenance or {}),
        cif=standard_cif(material_id, cell),
        symprec=symprec,
        angle_tolerance=angle_tolerance,
        name=name,
    )
