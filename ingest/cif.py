"""Local CIF files: ``ebsdlake ingest cif PATH...``.

A file is parsed with pymatgen; isotropic displacement parameters (``_atom_site_U_iso_or_equiv``
or ``_atom_site_B_iso_or_equiv``, Angstrom^2) become the per-site B in nm^2. Partially occupied
or mixed sites are refused with the reason, or ordered on request by giving each such site its
majority species (vacancies dropped): the simplest ordering that keeps the lattice and the
sites, which is what an EBSD simulation sees.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
from pymatgen.core import Structure
from pymatgen.io.cif import CifParser

from ingest.errors import CifError, DisorderedStructureError, IngestError
from ingest.labels import DEFAULT_SYMPREC
from ingest.record import StructureRecord, build_record
from lake.errors import one_line

_B_FROM_U = 8.0 * np.pi**2 / 100.0  # U [Angstrom^2] -> B [nm^2]
#: Tags naming a space group without listing its operations (pymatgen reads any of them).
SPACE_GROUP_TAGS = (
    "_space_group_name_H-M_alt",
    "_symmetry_space_group_name_H-M",
    "_space_group_name_H-M",
    "_space_group_name_Hall",
    "_symmetry_space_group_name_Hall",
    "_space_group_IT_number",
    "_symmetry_Int_Tables_number",
)


def cif_material_id(path: Path, text: str) -> str:
    """``cif-<file stem>-<8 hex of the content hash>``, restricted to lake-safe characters."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem)[:60].lstrip(".") or "file"
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return f"cif-{stem}-{digest}"


def _number(value: str) -> float | None:
    """A CIF number without its standard uncertainty (``"0.0051(3)"`` -> 0.0051)."""
    try:
        return float(re.sub(r"\(\d+\)$", "", str(value).strip()))
    except ValueError:
        return None


def _first_block(parser: CifParser):
    """The first data block (the one whose structure is read)."""
    return next(iter(parser._cif.data.values()))


def _b_by_label(parser: CifParser) -> dict[str, float]:
    """Per-label B in nm^2 from the first data block's isotropic displacement columns."""
    block = _first_block(parser)
    labels = block.data.get("_atom_site_label") or []
    u_values = block.data.get("_atom_site_U_iso_or_equiv")
    b_values = block.data.get("_atom_site_B_iso_or_equiv")
    result: dict[str, float] = {}
    for index, label in enumerate(labels):
        if u_values is not None and (u := _number(u_values[index])) and u > 0:
            result[label] = u * _B_FROM_U
        elif b_values is not None and (b := _number(b_values[index])) and b > 0:
            result[label] = b / 100.0  # Angstrom^2 -> nm^2
    return result


def order_majority(structure: Structure) -> Structure:
    """Each partially occupied or mixed site takes its majority species, fully occupied."""
    species = [max(site.species.items(), key=lambda item: item[1])[0] for site in structure]
    return Structure(
        structure.lattice,
        species,
        structure.frac_coords,
        site_properties=structure.site_properties or None,
        labels=structure.labels,
    )


def _check_cell(path: Path, block) -> None:
    """Raise :class:`CifError` on a cell length that is not positive or an angle outside
    (0, 180) degrees (pymatgen would take the absolute value of a negative length); a missing
    tag is left to pymatgen."""
    limits = {f"_cell_length_{axis}": (0.0, np.inf) for axis in "abc"}
    limits |= {f"_cell_angle_{name}": (0.0, 180.0) for name in ("alpha", "beta", "gamma")}
    for tag, (low, high) in limits.items():
        if tag not in block.data:
            continue
        value = _number(block.data[tag])
        if value is None or not low < value < high:
            need = "a positive length" if high == np.inf else "an angle in (0, 180) degrees"
            raise CifError(f"{path}: {tag} {block.data[tag]!r} is not {need}")


def _declared_space_group(block) -> tuple[str, str] | None:
    """The first space-group tag of ``block`` and its value, unless it declares P1."""
    for tag in SPACE_GROUP_TAGS:
        value = str(block.data.get(tag, "")).strip().strip("'\"")
        if value and value not in ("?", ".") and value.replace(" ", "") not in ("P1", "1"):
            return tag, value
    return None


def declared_space_group(block) -> tuple[str, int] | None:
    """``(text, number)`` of the space group the file declares (the first tag that parses),
    unless it declares P1 (a file listing every atom) or nothing usable."""
    from pymatgen.symmetry.groups import SpaceGroup

    for tag in SPACE_GROUP_TAGS:
        value = str(block.data.get(tag, "")).strip().strip("'\"")
        if not value or value in ("?", ".") or "Hall" in tag:
            continue
        if value.replace(" ", "") in ("P1", "1"):
            return None
        try:
            number = (
                int(value) if value.isdigit() else SpaceGroup(value.replace(" ", "")).int_number
            )
        except (ValueError, KeyError):
            continue
        return value, number
    return None


def _check_symmetry_read(path: Path, block, messages: list[str]) -> None:
    """Raise :class:`CifError` when pymatgen fell back to P1 although the file declares
    another space group (a symbol it does not know, and no symmetry operations)."""
    if not any("Defaulting to P1" in message for message in messages):
        return
    declared = _declared_space_group(block)
    if declared is not None:
        tag, value = declared
        raise CifError(
            f"{path}: unknown space group {value!r} ({tag}) and no symmetry operations; "
            "fix the symbol or list _space_group_symop_operation_xyz"
        )


def _describe_disorder(path: Path, structure: Structure) -> str:
    site = next(s for s in structure if not s.is_ordered)
    label = getattr(site, "label", None) or site.species.formula
    occupancy = ", ".join(f"{sp} {occ:g}" for sp, occ in site.species.items())
    return (
        f"{path}: site {label} is partially occupied or mixed ({occupancy}); "
        "pass --order-disordered to give each such site its majority species"
    )


def parse_cif(path: str | Path, order_disordered: bool = False) -> Structure:
    """The structure of a CIF file (first data block), B per site in ``B_nm2``.

    See :func:`parse_cif_declared` for the errors.
    """
    return parse_cif_declared(path, order_disordered)[0]


def parse_cif_declared(
    path: str | Path, order_disordered: bool = False
) -> tuple[Structure, tuple[str, int] | None]:
    """The structure of a CIF file and the space group it declares (:func:`declared_space_group`).

    Raises
    ------
    CifError
        The file is missing, unreadable or has no valid structure (a cell length that is not
        positive, an angle outside (0, 180), a space-group symbol pymatgen does not know
        with no symmetry operations...); the message names the file and what is wrong.
    DisorderedStructureError
        A site is partially occupied and ``order_disordered`` is False.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise CifError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if "_cell_length_a" not in text:
        raise CifError(f"{path}: not a CIF with a unit cell (no _cell_length_a)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parser = CifParser.from_str(text, occupancy_tolerance=1.0)
            block = _first_block(parser)
        except Exception as exc:  # pymatgen raises many types on malformed input
            raise CifError(f"{path}: malformed CIF: {one_line(exc, first_line=True)}") from None
        _check_cell(path, block)
        try:
            structures = parser.parse_structures(primitive=False, on_error="raise")
        except Exception as exc:
            raise CifError(f"{path}: malformed CIF: {one_line(exc, first_line=True)}") from None
    messages = [str(w.message) for w in caught] + list(getattr(parser, "warnings", []))
    _check_symmetry_read(path, block, messages)
    if not structures:
        why = (
            "; ".join(one_line(m, first_line=True) for m in messages if m.strip()) or "no structure"
        )
        raise CifError(f"{path}: malformed CIF: {why}")
    structure = structures[0]
    b_by_label = _b_by_label(parser)
    if b_by_label:
        structure.add_site_property(
            "B_nm2", [b_by_label.get(getattr(s, "label", None)) for s in structure]
        )
    if not structure.is_ordered:
        if not order_disordered:
            raise DisorderedStructureError(_describe_disorder(path, structure))
        structure = order_majority(structure)
    return structure, declared_space_group(block)


def read_cif(
    path: str | Path,
    order_disordered: bool = False,
    symprec: float = DEFAULT_SYMPREC,
    on_warning: Callable[[str], None] | None = None,
) -> StructureRecord:
    """One record from a CIF file (see :func:`parse_cif` for the errors).

    A file whose declared space group differs from the one its atoms and symmetry operators
    give is read as the operators say, and ``on_warning(line)`` (default: ``warnings.warn``)
    gets one line naming both.
    """
    path = Path(path)
    structure, declared = parse_cif_declared(path, order_disordered)
    text = path.read_text(encoding="utf-8", errors="replace")
    provenance = {
        "file": str(path.resolve()),
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "ordered_by_majority": bool(order_disordered),
    }
    try:
        record = build_record(cif_material_id(path, text), structure, "cif", provenance, symprec)
    except IngestError as exc:
        raise type(exc)(f"{path}: {exc}") from None
    found = record.labels
    if declared is not None and declared[1] != found.spacegroup_number:
        line = (
            f"{path}: declares space group {declared[0]} ({declared[1]}) but its atoms and "
            f"symmetry operators give {found.spacegroup_symbol} ({found.spacegroup_number}); "
            f"stored as {found.spacegroup_symbol} (check _symmetry_equiv_pos_as_xyz)"
        )
        if on_warning is None:
            warnings.warn(line, stacklevel=2)
        else:
            on_warning(line)
    return record


def read_cifs(
    paths: Iterable[str | Path],
    order_disordered: bool = False,
    symprec: float = DEFAULT_SYMPREC,
    on_reject: Callable[[str, str], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> Iterator[StructureRecord]:
    """Records from several files; a bad file goes to ``on_reject(path, reason)`` (or raises),
    a declared space group its operators contradict to ``on_warning(line)``."""
    for path in paths:
        try:
            yield read_cif(path, order_disordered, symprec, on_warning)
        except IngestError as exc:
            if on_reject is None:
                raise
            on_reject(str(path), str(exc))
