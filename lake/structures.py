"""Structure groups ``structures/<material_id>``: labels, CIF text and provenance as attributes.

A structure is a group with no arrays; all of it lives in one ``zarr.json`` that is written in a
single atomic write (object PUT or rename) with ``status: "complete"`` inside, so the
completion marker can never precede the data. :class:`StructureRecord` is the one typed reader
of those attributes (what ``simulate`` and ``train`` read); :mod:`ingest` writes them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import zarr

from lake.errors import LakeFormatError, LakeInputError, LakeNotFoundError, MissingLabelError
from lake.jsonable import to_json
from lake.laue_classes import laue_class
from lake.layout import COMPLETE, RESERVED_STRUCTURE_KEYS, STATUS_KEY, STRUCTURES, structure_path
from lake.store import StoreHandle, translate_errors


def put_structure(
    handle: StoreHandle, material_id: str, cif: str, attrs: Mapping[str, Any] | None
) -> None:
    """Create or replace a structure group (ids must be validated by the caller)."""
    if not isinstance(cif, str) or not cif.strip():
        raise LakeInputError(f"structure {material_id}: cif text is empty or not a string")
    user_attrs = dict(attrs or {})
    clash = sorted(RESERVED_STRUCTURE_KEYS.intersection(user_attrs))
    if clash:
        raise LakeInputError(f"structure {material_id}: attrs keys {clash} are reserved")
    payload = to_json(
        {**user_attrs, "material_id": material_id, "cif": cif, STATUS_KEY: COMPLETE},
        f"structure {material_id} attrs",
    )
    path = structure_path(material_id)
    with translate_errors(handle.url, f"writing {path}"):
        if handle.read_metadata(path) is None:
            zarr.create_group(handle.zarr_store, path=path, attributes=payload)
        else:
            zarr.open_group(handle.zarr_store, path=path, mode="r+").attrs.put(payload)


def read_structure(handle: StoreHandle, material_id: str) -> dict[str, Any]:
    """Return a structure's attributes including ``"cif"``; raise when absent."""
    metadata = handle.read_metadata(structure_path(material_id))
    if metadata is None:
        raise LakeNotFoundError(f"{handle.url}: unknown material id {material_id!r}")
    if "_unreadable" in metadata:
        raise LakeFormatError(
            f"{handle.url}: structure {material_id!r} metadata unreadable: {metadata['_unreadable']}"
        )
    attrs = dict(metadata.get("attributes", {}))
    if attrs.get(STATUS_KEY) != COMPLETE:
        raise LakeNotFoundError(f"{handle.url}: structure {material_id!r} is incomplete")
    attrs.pop(STATUS_KEY, None)
    return attrs


def structure_ids(handle: StoreHandle) -> list[str]:
    """Ids of every complete structure, sorted."""
    names = handle.list_children(STRUCTURES)
    metadata = handle.read_metadata_many([structure_path(n) for n in names])
    return [
        name
        for name in names
        if (meta := metadata[structure_path(name)]) is not None
        and meta.get("attributes", {}).get(STATUS_KEY) == COMPLETE
    ]


#: The attribute-key stems of one label set, in the order the lake stores them.
LABEL_KEYS = (
    "spacegroup_number",
    "spacegroup_symbol",
    "point_group",
    "crystal_system",
    "bravais_lattice",
)
#: Prefix of the labels of the compositionally-disordered structure.
DISORDERED_PREFIX = "disordered_"
#: A label derived on reading (from ``point_group``), not stored: the Laue class.
LAUE_CLASS_KEY = "laue_class"
#: Lattice parameter keys of ``lattice_nm``: lengths in nm, angles in degrees.
LATTICE_KEYS = ("a", "b", "c", "alpha", "beta", "gamma")


@dataclass(frozen=True)
class StoredSite:
    """One site of the stored asymmetric unit.

    Attributes
    ----------
    element
        Element symbol as stored (``"Ni"``).
    xyz
        Fractional coordinates of the representative atom.
    occupancy
        Site occupancy in (0, 1].
    B_nm2
        Isotropic Debye-Waller factor in nm^2; ``None`` when the record gives no usable one.
    wyckoff
        Wyckoff letter in the stored setting (``""`` when unknown).
    multiplicity
        Atoms of the orbit in the conventional cell, when stored.
    """

    element: str
    xyz: tuple[float, float, float]
    occupancy: float = 1.0
    B_nm2: float | None = None
    wyckoff: str = ""
    multiplicity: int | None = None


@dataclass(frozen=True)
class StructureRecord:
    """A stored structure's attributes, typed: labels, lattice (nm, degrees), sites, setting.

    Build with :meth:`from_attrs` (or ``Lake.structure_record``). Label fields are ``None`` when
    the record does not carry them (a reference structure without labels); :meth:`label`
    raises then. ``lattice_nm`` and ``sites`` are ``None`` when absent (a record kept for its
    labels only); :meth:`require_geometry` raises then. ``attrs`` keeps every stored attribute
    as read.
    """

    material_id: str
    formula: str | None
    source: str | None
    spacegroup_number: int | None
    spacegroup_symbol: str | None
    disordered_spacegroup_number: int | None
    disordered_spacegroup_symbol: str | None
    point_group: str | None
    crystal_system: str | None
    bravais_lattice: str | None
    lattice_nm: dict[str, float] | None
    sites: tuple[StoredSite, ...] | None
    setting: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        """A short name for messages: the material id, else the formula."""
        return self.material_id or self.formula or "structure"

    @property
    def origin_choice(self) -> int:
        """Origin choice (1 or 2) of the stored setting; 2 (the ITA standard) when unsaid."""
        value = self.setting.get("origin_choice", self.setting.get("origin"))
        return 1 if value in (1, "1") else 2

    @property
    def hall_number(self) -> int | None:
        """spglib Hall number of the stored setting, when stored."""
        value = self.setting.get("hall_number")
        return None if value in (None, "") else int(value)

    def label(self, key: str) -> Any:
        """Value of the flat label attribute ``key`` (``"disordered_spacegroup_number"``...).

        Raises
        ------
        MissingLabelError
            The record has no (or a null) attribute ``key``.
        """
        stem = key.removeprefix(DISORDERED_PREFIX)
        if stem == LAUE_CLASS_KEY:  # derived from the stored point group
            point_group = self.label(key[: len(key) - len(stem)] + "point_group")
            try:
                return laue_class(point_group)
            except ValueError as exc:
                raise MissingLabelError(f"structure {self.material_id!r}: {exc}") from None
        value = self.attrs.get(key)
        if value is None:
            raise MissingLabelError(f"structure {self.material_id!r}: no label attribute {key!r}")
        return value

    def require_geometry(self) -> StructureRecord:
        """Return self; a :class:`LakeFormatError` naming the field when the lattice or the
        sites are absent (a simulation needs both)."""
        if self.lattice_nm is None:
            raise LakeFormatError(
                f"{self.name}: field 'lattice_nm' is missing (a, b, c in nm, angles)"
            )
        if self.sites is None:
            raise LakeFormatError(f"{self.name}: field 'sites' is missing")
        return self

    @classmethod
    def from_attrs(cls, material_id: str, attrs: Mapping[str, Any]) -> StructureRecord:
        """Read the flat attributes ``Lake.structure`` returns (or a reference record).

        Raises
        ------
        LakeFormatError
            A lattice, site or space group field that is malformed, named.
        """
        attrs = dict(attrs)
        name = material_id or attrs.get("formula") or "structure"
        setting = attrs.get("setting") or {}
        return cls(
            material_id=material_id,
            formula=attrs.get("formula"),
            source=attrs.get("source"),
            spacegroup_number=_space_group(attrs, "spacegroup_number", name),
            spacegroup_symbol=attrs.get("spacegroup_symbol"),
            disordered_spacegroup_number=_space_group(
                attrs, f"{DISORDERED_PREFIX}spacegroup_number", name
            ),
            disordered_spacegroup_symbol=attrs.get(f"{DISORDERED_PREFIX}spacegroup_symbol"),
            point_group=attrs.get("point_group"),
            crystal_system=attrs.get("crystal_system"),
            bravais_lattice=attrs.get("bravais_lattice"),
            lattice_nm=_lattice(attrs, name),
            sites=_sites(attrs, name),
            setting=dict(setting) if isinstance(setting, Mapping) else {},
            attrs=attrs,
        )


def _space_group(attrs: Mapping[str, Any], key: str, name: str) -> int | None:
    value = attrs.get(key)
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise LakeFormatError(f"{name}: field {key!r} is {value!r}, not 1-230") from None
    if not 1 <= number <= 230:
        raise LakeFormatError(f"{name}: field {key!r} is {number}, not 1-230")
    return number


def _lattice(attrs: Mapping[str, Any], name: str) -> dict[str, float] | None:
    lattice = attrs.get("lattice_nm")
    if lattice is None:
        return None
    if not isinstance(lattice, Mapping):
        raise LakeFormatError(
            f"{name}: field 'lattice_nm' is not a table of a, b, c (nm) and angles"
        )
    out = {}
    for key in LATTICE_KEYS:
        try:
            out[key] = float(lattice[key])
        except (KeyError, TypeError, ValueError):
            raise LakeFormatError(
                f"{name}: field 'lattice_nm.{key}' is missing or not a number"
            ) from None
    return out


def _sites(attrs: Mapping[str, Any], name: str) -> tuple[StoredSite, ...] | None:
    sites = attrs.get("sites")
    if sites is None:
        return None
    if not isinstance(sites, (list, tuple)):
        raise LakeFormatError(f"{name}: field 'sites' is not a list")
    return tuple(_site(site, name, index) for index, site in enumerate(sites))


def _site(site: Any, name: str, index: int) -> StoredSite:
    if not isinstance(site, Mapping):
        raise LakeFormatError(f"{name}: site {index} is not a table")
    try:
        xyz = tuple(float(v) for v in site["xyz"])
    except (KeyError, TypeError, ValueError):
        raise LakeFormatError(
            f"{name}: site {index} field 'xyz' is missing or not numbers"
        ) from None
    if len(xyz) != 3 or not all(math.isfinite(v) for v in xyz):
        raise LakeFormatError(f"{name}: site {index} field 'xyz' must be 3 finite numbers")
    value = site.get("occupancy", 1.0)
    try:
        occupancy = float(value)
    except (TypeError, ValueError):
        raise LakeFormatError(f"{name}: site {index} occupancy {value!r} is not a number") from None
    if not 0 < occupancy <= 1:
        raise LakeFormatError(f"{name}: site {index} occupancy {occupancy} is not in (0, 1]")
    multiplicity = site.get("multiplicity")
    return StoredSite(
        element=str(site.get("element", "")),
        xyz=xyz,  # type: ignore[arg-type]
        occupancy=occupancy,
        B_nm2=_positive_or_none(site.get("B_nm2")),
        wyckoff=str(site.get("wyckoff") or ""),
        multiplicity=int(multiplicity) if isinstance(multiplicity, int) else None,
    )


def _positive_or_none(value: Any) -> float | None:
    """A positive finite number, else ``None`` (an absent or unusable B)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None
