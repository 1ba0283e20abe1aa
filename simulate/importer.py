"""Bring existing EMsoft master-pattern files into the lake (``ebsdlake lake import-emsoft``).

Each file becomes one master group; its structure (``CrystalData``) is ingested first when the
lake does not have the material yet, labelled by the ingest stage like any other structure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lake.ids import check_material_id, check_variant
from simulate.emsoft_io import read_master, read_structure
from simulate.errors import SimulateInputError
from simulate.structure import build_crystal


@dataclass(frozen=True)
class ImportedMaster:
    """One imported file: where it went and whether its structure was added."""

    path: Path
    material_id: str
    variant: str
    structure_added: bool


def _safe_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.\-]", "-", text).lstrip(".") or "emsoft"
    return name[:128]


def _pymatgen_structure(attrs: dict):
    """The full cell of an EMsoft crystal as a pymatgen Structure (Angstrom), B per site."""
    from pymatgen.core import Lattice, Structure

    crystal = build_crystal(attrs)
    lattice = Lattice.from_parameters(
        crystal.a * 10, crystal.b * 10, crystal.c * 10, crystal.alpha, crystal.beta, crystal.gamma
    )
    species, coords, b_values = [], [], []
    for site, orbit in zip(crystal.sites, crystal.positions, strict=True):
        for xyz in orbit:
            species.append(site.element)
            coords.append(xyz)
            b_values.append(site.debye_waller)
    return Structure(lattice, species, coords, site_properties={"B_nm2": b_values})


def ensure_structure(lake, material_id: str, path: Path) -> bool:
    """Ingest the file's crystal as ``material_id`` unless the lake has it; True if added."""
    if material_id in lake.structure_ids():
        return False
    from ingest.record import build_record
    from ingest.writer import ingest

    attrs = {**read_structure(path), "material_id": material_id}
    record = build_record(
        material_id,
        _pymatgen_structure(attrs),
        source="cif",
        provenance={"emsoft_file": path.name, "imported_by": "ebsdlake lake import-emsoft"},
    )
    ingest(lake, [record], progress=False)
    return True


@dataclass(frozen=True)
class PlannedImport:
    """One checked file and where its master goes."""

    path: Path
    material_id: str
    variant: str


def plan_import(
    paths: Sequence[str | Path],
    material_id: str | None = None,
    variant: str | None = None,
) -> list[PlannedImport]:
    """Check every file and name its master, before anything is written.

    Each file is read as an EMsoft EBSD master (:func:`~simulate.emsoft_io.read_master`:
    datasets present, energies, grid, finite and non-zero planes), so one bad file stops the
    import before any lake is created or written.

    Raises
    ------
    SimulateInputError
        No files, ``--variant`` and ``--material-id`` with several files, or a file that is
        not a usable EMsoft master (:class:`~simulate.errors.EmsoftFileError`).
    LakeInputError
        A material id or variant name the lake cannot store.
    """
    files = [Path(p) for p in paths]
    if not files:
        raise SimulateInputError("import-emsoft: give at least one EMsoft master file")
    if variant and material_id and len(files) > 1:
        raise SimulateInputError(
            "import-emsoft: --variant with --material-id names one master; give one file"
        )
    planned = []
    for path in files:
        read_master(path)  # validates; the arrays are read again when written
        mid = material_id or _safe_name(path.stem)
        name = variant or (
            "default" if (len(files) == 1 or not material_id) else _safe_name(path.stem)
        )
        check_material_id(mid)
        check_variant(name)
        planned.append(PlannedImport(path, mid, name))
    return planned


def write_imports(lake, planned: Sequence[PlannedImport]) -> list[ImportedMaster]:
    """Write the masters of :func:`plan_import` into ``lake`` (structures first if missing)."""
    out = []
    for item in planned:
        result = read_master(item.path)
        added = ensure_structure(lake, item.material_id, item.path)
        lake.write_master(
            item.material_id,
            item.variant,
            result.master,
            energies_kev=result.energies_kev,
            weights=result.weights,
            attrs={**result.attrs, "variant_kind": "imported"},
        )
        out.append(ImportedMaster(item.path, item.material_id, item.variant, added))
    return out


def import_emsoft(
    lake,
    paths: Sequence[str | Path],
    material_id: str | None = None,
    variant: str | None = None,
) -> list[ImportedMaster]:
    """Import EMsoft EBSD master files into ``lake``: :func:`plan_import` (every file checked
    first), then :func:`write_imports`.

    Parameters
    ----------
    lake
        An open, writable :class:`lake.Lake`.
    paths
        EMsoft master-pattern HDF5 files.
    material_id
        Lake id for the structure; default the file name (one material per file).
    variant
        Variant name; default ``"default"``, or the file name when several files share one
        material id.
    """
    return write_imports(lake, plan_import(paths, material_id, variant))
