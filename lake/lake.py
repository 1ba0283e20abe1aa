"""The :class:`Lake` facade: the typed API every other package uses to reach the store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
import zarr

from lake import catalog as _catalog
from lake import masters as _masters
from lake import runs as _runs
from lake import structures as _structures
from lake.errors import LakeFormatError, LakeNotFoundError, LakeReadOnlyError
from lake.ids import check_file_name, check_material_id, check_run_id, check_variant
from lake.layout import (
    FORMAT_VERSION,
    ROOT_ATTR,
    master_path,
    material_masters_path,
    run_path,
    structure_path,
)
from lake.scan import scan
from lake.store import StoreHandle, is_local_url, open_store, translate_errors
from lake.verify import VerifyReport, verify


class Lake:
    """A simulated-pattern lake at one fsspec URL.

    Get one with :meth:`Lake.open` (``create=True`` makes a new lake). Methods validate ids, then delegate to one module per job
    (``structures``, ``masters``, ``catalog``, ``verify``, ``runs``). Instances hold no
    mutable state besides the open store, so one may be shared by threads; processes must
    open their own.
    """

    def __init__(self, handle: StoreHandle, format_version: int) -> None:
        self._handle = handle
        self.format_version = format_version
        self.created = False
        """Whether :meth:`open` created this lake (``create=True`` on a URL with none)."""

    # ---- opening ----------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        url: str = "./lake.zarr",
        storage_options: Mapping[str, Any] | None = None,
        mode: Literal["r", "r+"] = "r+",
        *,
        create: bool = False,
    ) -> Lake:
        """Open the existing lake at ``url`` to read and write (``mode="r+"``) or only read
        (``mode="r"``); ``create=True`` creates it first when it is missing.

        Creating is explicit so that a mistyped URL is an error, not a new, empty lake;
        ``ebsdlake ingest`` (the first command a user runs) creates one and says so.

        Parameters
        ----------
        url
            Local path (default ``./lake.zarr``, as the embedded config), ``s3://bucket/prefix``,
            ``memory://name``...
        storage_options
            fsspec options, e.g. ``{"endpoint_url": ..., "key": ..., "secret": ...}``,
            ``{"profile": "name"}`` or ``{"anon": True}`` for S3.
        mode
            ``"r+"`` reads and writes; ``"r"`` refuses writes.
        create
            Create the lake root when there is none (``mode="r+"`` only); :attr:`created`
            then says whether this call created it.

        Raises
        ------
        LakeNotFoundError
            No lake at ``url`` (and ``create`` is false), or the S3 bucket does not exist.
        LakeAccessError
            The store refused the credentials.
        LakeFormatError
            The lake was written by a newer format, or the root is not an ebsdlake lake.
        """
        if mode not in ("r", "r+"):
            raise ValueError(
                f"lake mode {mode!r} is not 'r' or 'r+' (to create a lake: create=True)"
            )
        if create and mode == "r":
            raise ValueError("Lake.open: create=True needs mode='r+' (a read-only open)")
        handle = open_store(url, dict(storage_options or {}), read_only=(mode == "r"))
        metadata = handle.read_metadata("")
        created = False
        if metadata is None:
            if not create:
                raise LakeNotFoundError(_missing_lake_message(handle))
            metadata, created = _create_root(handle), True
        lake = cls(handle, _check_format(handle.url, metadata))
        lake.created = created
        return lake

    @property
    def url(self) -> str:
        """The lake URL (local paths absolute)."""
        return self._handle.url

    @property
    def storage_options(self) -> dict[str, Any]:
        """The fsspec storage options the lake was opened with (a copy)."""
        return dict(self._handle.storage_options)

    @property
    def read_only(self) -> bool:
        """Whether the lake was opened with ``mode="r"``."""
        return self._handle.read_only

    def __repr__(self) -> str:
        return f"Lake({self.url!r}, mode={'r' if self.read_only else 'r+'!r})"

    def _writable(self, what: str) -> None:
        if self._handle.read_only:
            raise LakeReadOnlyError(f"{self.url}: opened read-only, cannot {what}")

    # ---- structures -------------------------------------------------------------------------
    def put_structure(
        self, material_id: str, cif: str, attrs: Mapping[str, Any] | None = None
    ) -> None:
        """Store (or replace) a structure: CIF text plus flat label attributes.

        See docs/ARCHITECTURE.md for the attribute keys (``formula``, ``source``,
        ``spacegroup_number``..., lengths in nm, B-factors in nm^2).
        """
        check_material_id(material_id)
        self._writable(f"write structure {material_id!r}")
        _structures.put_structure(self._handle, material_id, cif, attrs)

    def structure(self, material_id: str) -> dict[str, Any]:
        """Attributes of a complete structure, including ``"cif"``."""
        return _structures.read_structure(self._handle, check_material_id(material_id))

    def structure_record(self, material_id: str) -> _structures.StructureRecord:
        """A complete structure's attributes as a typed :class:`~lake.StructureRecord`."""
        return _structures.StructureRecord.from_attrs(material_id, self.structure(material_id))

    def structure_ids(self) -> list[str]:
        """Ids of every complete structure, sorted."""
        return _structures.structure_ids(self._handle)

    # ---- masters ----------------------------------------------------------------------------
    def write_master(
        self,
        material_id: str,
        variant: str,
        master: np.ndarray,
        energies_kev: Sequence[float] | np.ndarray,
        weights: Sequence[float] | np.ndarray,
        attrs: Mapping[str, Any] | None = None,
        mantissa_bits: int | None = None,
    ) -> None:
        """Write one simulation atomically: chunks first, the completion marker last.

        Parameters
        ----------
        master
            float32 ``(n_energies, 2, 2*npx+1, 2*npx+1)``, square-Lambert, north then south.
        energies_kev
            Energy (keV) of each plane.
        weights
            Monte Carlo backscatter yield per energy bin, ``(n_energies,)``.
        attrs
            Simulation parameters (engine, engine_version, npx, dmin_nm, bethe, voltage_kv,
            sample_tilt_deg, bfactors_nm2 [{element, wyckoff, B_nm2}], wall_time_s...).
        mantissa_bits
            None (default): store the float32 values exactly, uncompressed. 1-23: round each
            value to that many mantissa bits first (largest relative error
            ``2**-(mantissa_bits+1)``, 6.1e-5 at 13) and compress with Blosc-LZ4; recorded in
            the group attrs as ``precision``. See ``lake.precision``.

        An existing group for (material, variant), whatever its status, is removed first, so
        rewriting an interrupted or failed simulation is safe.
        """
        check_material_id(material_id)
        check_variant(variant)
        self._writable(f"write master {material_id!r} {variant!r}")
        _masters.write_master(
            self._handle, material_id, variant, master, energies_kev, weights, attrs, mantissa_bits
        )

    def mark_failed(
        self,
        material_id: str,
        variant: str,
        reason: str,
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        """Record that a simulation failed (visible in the catalog, refused by ``master``)."""
        check_material_id(material_id)
        check_variant(variant)
        self._writable(f"mark {material_id!r} {variant!r} failed")
        _masters.mark_failed(self._handle, material_id, variant, reason, attrs)

    def master(
        self,
        material_id: str,
        variant: str = "default",
        energy: float | Sequence[float] | None = None,
        lazy: bool = False,
    ) -> xr.DataArray:
        """A complete master pattern as an ``xarray.DataArray``.

        Dims ``(energy, hemisphere, row, col)``; coords ``energy`` (keV), ``hemisphere``
        (``north``, ``south``), scalars ``material_id``, ``variant``, ``bfactor_nm2`` (mean
        over sites, nm^2); attrs hold every simulation parameter. ``energy`` a number selects
        that plane (within 1e-3 keV) and drops the ``energy`` dim, a list keeps it; only the
        chunks needed are read. ``lazy=True`` gives a dask-backed array.
        """
        check_material_id(material_id)
        check_variant(variant)
        return _masters.read_master(self._handle, material_id, variant, energy, lazy)

    def weights(self, material_id: str, variant: str = "default") -> xr.DataArray:
        """Monte Carlo energy weights of a complete master, dims ``(energy,)``."""
        check_material_id(material_id)
        check_variant(variant)
        return _masters.read_weights(self._handle, material_id, variant)

    def master_status(self, material_id: str, variant: str = "default") -> str:
        """``"complete"``, ``"incomplete"``, ``"failed"``, ``"damaged"`` or ``"missing"``."""
        check_material_id(material_id)
        check_variant(variant)
        metadata = self._handle.read_metadata(master_path(material_id, variant))
        if metadata is None and self._handle.exists(master_path(material_id, variant)):
            return "incomplete"
        return _masters.status_from_metadata(metadata)

    def master_attrs(self, material_id: str, variant: str = "default") -> dict[str, Any]:
        """The stored attributes of a master group whatever its status (``{}`` when missing):
        what ``simulate`` compares with the settings it was asked for."""
        check_material_id(material_id)
        check_variant(variant)
        metadata = self._handle.read_metadata(master_path(material_id, variant)) or {}
        return dict(metadata.get("attributes", {})) if "_unreadable" not in metadata else {}

    def variants(self, material_id: str) -> list[str]:
        """Complete variants of a material, sorted."""
        check_material_id(material_id)
        names = self._handle.list_children(material_masters_path(material_id))
        metadata = self._handle.read_metadata_many([master_path(material_id, v) for v in names])
        return [
            v
            for v in names
            if _masters.status_from_metadata(metadata[master_path(material_id, v)]) == "complete"
        ]

    # ---- whole-lake views -------------------------------------------------------------------
    def catalog(self) -> pd.DataFrame:
        """One row per structure x visible variant (complete or failed); see ``lake.catalog``."""
        return _catalog.build_catalog(scan(self._handle))

    def verify(self, progress: bool = False, repair: bool = False) -> VerifyReport:
        """Re-read every chunk against stored checksums; list incomplete/corrupt/failed groups.

        ``repair=True`` marks each corrupt master ``damaged`` (``simulate`` redoes those).
        """
        if repair:
            self._writable("mark corrupt masters damaged")
        return verify(self._handle, progress=progress, repair=repair)

    def remove(self, material_id: str, variant: str | None = None) -> None:
        """Delete one variant, or (``variant=None``) the structure and all its masters."""
        check_material_id(material_id)
        self._writable(f"remove {material_id!r}")
        paths = (
            [master_path(material_id, check_variant(variant))]
            if variant is not None
            else [structure_path(material_id), material_masters_path(material_id)]
        )
        if not any(self._handle.exists(p) for p in paths):
            what = f"master {material_id!r} {variant!r}" if variant else f"material {material_id!r}"
            raise LakeNotFoundError(f"{self.url}: nothing to remove for {what}")
        for path in paths:
            self._handle.remove_tree(path)

    # ---- training runs ----------------------------------------------------------------------
    def run_location(self, run_id: str) -> tuple[str, dict[str, Any]]:
        """URL and storage options of ``runs/<run_id>/`` (for Ray Train's ``storage_path``)."""
        check_run_id(run_id)
        return self._handle.url_of(run_path(run_id)), self.storage_options

    def put_run_file(self, run_id: str, name: str, data: bytes) -> None:
        """Write one file (metrics, confusion matrix...) into a run folder."""
        check_run_id(run_id)
        check_file_name(name)
        self._writable(f"write run file {run_id}/{name}")
        _runs.put_run_file(self._handle, run_id, name, data)

    def get_run_file(self, run_id: str, name: str) -> bytes:
        """Read one file of a run folder."""
        return _runs.get_run_file(self._handle, check_run_id(run_id), check_file_name(name))

    def run_ids(self) -> list[str]:
        """Ids of every run folder, sorted."""
        return _runs.run_ids(self._handle)

    def has_run_file(self, run_id: str, name: str) -> bool:
        """Whether a run folder holds the file ``name`` (without reading it)."""
        return _runs.has_run_file(self._handle, check_run_id(run_id), check_file_name(name))

    def remove_run(self, run_id: str) -> None:
        """Delete a run folder with all its files and checkpoints."""
        check_run_id(run_id)
        self._writable(f"remove run {run_id!r}")
        _runs.remove_run(self._handle, run_id)

    def run_entries(self, run_id: str) -> dict[str, float | None]:
        """Name -> modification time (epoch seconds, or ``None``) of each file and folder in
        a run folder (one listing)."""
        return _runs.run_entries(self._handle, check_run_id(run_id))

    def run_storage(self, run_id: str) -> tuple[str, Any, str]:
        """``(storage_path, storage_filesystem, name)`` that make Ray Train write its
        checkpoints into ``runs/<run_id>/`` (``ray.train.RunConfig``'s arguments)."""
        url, options = self.run_location(run_id)
        return _runs.run_storage(url, options)


def _check_format(url: str, metadata: dict[str, Any]) -> int:
    if "_unreadable" in metadata:
        raise LakeFormatError(f"{url}: root metadata unreadable: {metadata['_unreadable']}")
    marker = metadata.get("attributes", {}).get(ROOT_ATTR)
    if not isinstance(marker, dict) or not isinstance(marker.get("format"), int):
        raise LakeFormatError(f"{url}: not an ebsdlake lake (no '{ROOT_ATTR}.format' attribute)")
    version = marker["format"]
    if version > FORMAT_VERSION:
        raise LakeFormatError(
            f"{url}: lake format {version} is newer than this ebsdlake supports "
            f"({FORMAT_VERSION}); upgrade ebsdlake"
        )
    return version


def _create_root(handle: StoreHandle) -> dict[str, Any]:
    attributes = {ROOT_ATTR: {"format": FORMAT_VERSION}}
    with translate_errors(handle.url, "creating the lake"):
        try:
            zarr.create_group(handle.zarr_store, attributes=attributes)
        except FileNotFoundError as exc:
            raise LakeNotFoundError(_missing_lake_message(handle)) from exc
        except zarr.errors.ContainsGroupError:
            pass  # another process created it at the same moment
    metadata = handle.read_metadata("")
    if metadata is None:
        raise LakeNotFoundError(f"{handle.url}: could not create the lake root")
    return metadata


def _missing_lake_message(handle: StoreHandle) -> str:
    if handle.protocol in ("s3", "s3a", "gs", "gcs", "az", "abfs") and not is_local_url(handle.url):
        bucket = handle.root.split("/", 1)[0]
        try:
            handle.fs.invalidate_cache(bucket)
            bucket_exists = handle.fs.exists(bucket)
        except Exception:
            bucket_exists = True
        if not bucket_exists:
            return f"{handle.url}: bucket {bucket!r} does not exist"
    return (
        f"{handle.url}: no lake here (no root zarr.json); check the URL, or create one by "
        "ingesting into it (`ebsdlake --lake URL ingest ...`, or Lake.open(url, create=True))"
    )
