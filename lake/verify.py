"""``verify``: re-read every chunk of every complete master against its stored checksums."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zarr
from tqdm import tqdm

from lake.encoding import CHECKSUM_ALGORITHM, chunk_checksums, chunk_slices, crc32c_of
from lake.integrity import mark_damaged
from lake.layout import (
    CHECKSUMS_KEY,
    COMPLETE,
    DAMAGED,
    FAILED,
    MASTER_ARRAY,
    STATUS_KEY,
    WEIGHTS_ARRAY,
    master_path,
    structure_path,
)
from lake.masters import status_from_metadata
from lake.scan import scan
from lake.store import StoreHandle


@dataclass
class VerifyReport:
    """Outcome of :meth:`lake.Lake.verify`.

    Attributes
    ----------
    checked
        Number of complete groups whose data was re-read.
    incomplete
        Group paths without a completion marker (interrupted or in-progress writes).
    corrupt
        Group paths whose metadata does not parse, whose arrays are missing, or whose chunks
        do not match the stored checksums.
    failed
        Master group paths marked failed by the simulation (not an error of the store).
    damaged
        Corrupt master group paths marked ``damaged`` (by this run with ``repair``, or
        before); ``simulate`` redoes them. Also listed in ``corrupt``.
    reasons
        Group path -> one-line explanation for every incomplete, corrupt or failed group.
    """

    checked: int = 0
    incomplete: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing is incomplete or corrupt (failed simulations are allowed)."""
        return not self.incomplete and not self.corrupt

    def advice(self) -> list[str]:
        """One line per kind of problem found, saying which command fixes it."""
        lines = []
        masters = [p for p in self.corrupt if p.startswith("masters/")]
        unmarked = [p for p in masters if p not in self.damaged]
        if unmarked:
            lines.append(
                f"{len(unmarked)} corrupt master(s): `ebsdlake lake verify --repair` marks them "
                "damaged, then `ebsdlake simulate` redoes them"
            )
        if self.damaged:
            ids = " ".join(sorted({p.split("/")[1] for p in self.damaged}))
            lines.append(
                f"{len(self.damaged)} damaged master(s): `ebsdlake simulate --materials {ids}` "
                "redoes them"
            )
        structures = [p for p in self.corrupt + self.incomplete if p.startswith("structures/")]
        if structures:
            lines.append(
                f"{len(structures)} broken structure(s): ingest them again, or remove them with "
                "`ebsdlake lake rm ID`"
            )
        incomplete = [p for p in self.incomplete if p.startswith("masters/")]
        if incomplete:
            lines.append(
                f"{len(incomplete)} incomplete master(s) (interrupted writes): `ebsdlake simulate` "
                "redoes them, or `ebsdlake lake rm ID --variant V` removes them"
            )
        if self.failed:
            lines.append(
                f"{len(self.failed)} failed simulation(s): `ebsdlake simulate --retry-failed` "
                "runs them again"
            )
        return lines


def _check_array(group: zarr.Group, name: str, expected: Any) -> str | None:
    """Return a reason string when array ``name`` does not match ``expected`` checksums."""
    try:
        array = group[name]
    except KeyError:
        return f"array {name!r} is missing"
    if not isinstance(expected, list):
        return f"no checksums stored for {name!r}"
    chunks = tuple(array.chunks)
    selections = list(chunk_slices(array.shape, chunks))
    if len(expected) != len(selections):
        return f"{name!r} has {len(selections)} chunks but {len(expected)} checksums"
    try:
        actual = chunk_checksums(np.asarray(array[...]), chunks)
    except Exception:  # a chunk fails to decode: find which one, chunk by chunk
        actual = []
        for index, selection in enumerate(selections):
            try:
                actual.append(crc32c_of(np.asarray(array[selection])))
            except Exception as exc:
                return f"{name!r} chunk {index} unreadable ({type(exc).__name__}: {exc})"
    bad = [i for i, (a, e) in enumerate(zip(actual, expected, strict=True)) if a != e]
    if bad:
        return f"{name!r} chunks {bad} do not match their checksums"
    return None


def _check_master(handle: StoreHandle, path: str, attrs: dict[str, Any]) -> str | None:
    checksums = attrs.get(CHECKSUMS_KEY) or {}
    if checksums.get("algorithm") != CHECKSUM_ALGORITHM:
        return f"unknown checksum algorithm {checksums.get('algorithm')!r}"
    try:
        group = zarr.open_group(
            handle.zarr_store, path=path, mode="r", zarr_format=3, use_consolidated=False
        )
    except Exception as exc:
        return f"group unreadable ({type(exc).__name__}: {exc})"
    for name in (MASTER_ARRAY, WEIGHTS_ARRAY):
        try:
            reason = _check_array(group, name, checksums.get(name))
        except Exception as exc:
            reason = f"{name!r} unreadable ({type(exc).__name__}: {exc})"
        if reason:
            return reason
    return None


def verify(handle: StoreHandle, progress: bool = False, repair: bool = False) -> VerifyReport:
    """Check every structure's metadata and every master's chunks; see :class:`VerifyReport`.

    ``repair`` marks each corrupt master ``damaged`` (:func:`lake.integrity.mark_damaged`).
    """
    found = scan(handle)
    report = VerifyReport()
    for mid, metadata in found.structures.items():
        path = structure_path(mid)
        if metadata is None:
            report.incomplete.append(path)
            report.reasons[path] = "folder without group metadata"
        elif "_unreadable" in metadata:
            report.corrupt.append(path)
            report.reasons[path] = metadata["_unreadable"]
        elif metadata.get("attributes", {}).get(STATUS_KEY) != COMPLETE:
            report.incomplete.append(path)
            report.reasons[path] = "no completion marker"
        else:
            report.checked += 1
    items = sorted(found.masters.items())
    for (mid, variant), metadata in tqdm(
        items, desc="verify masters", unit="group", disable=not progress
    ):
        path = master_path(mid, variant)
        if metadata is not None and "_unreadable" in metadata:
            report.corrupt.append(path)
            report.reasons[path] = metadata["_unreadable"]
            continue
        status = status_from_metadata(metadata)
        if status == DAMAGED:
            report.corrupt.append(path)
            report.damaged.append(path)
            report.reasons[path] = str(metadata["attributes"].get("failure_reason", ""))  # type: ignore[index]
        elif status == FAILED:
            report.failed.append(path)
            report.reasons[path] = str(metadata["attributes"].get("failure_reason", ""))  # type: ignore[index]
        elif status != COMPLETE:
            report.incomplete.append(path)
            report.reasons[path] = (
                "folder without group metadata" if metadata is None else "no completion marker"
            )
        else:
            reason = _check_master(handle, path, metadata["attributes"])  # type: ignore[index]
            report.checked += 1
            if reason:
                report.corrupt.append(path)
                report.reasons[path] = reason
                if repair:
                    mark_damaged(handle, mid, variant, reason)
                    report.damaged.append(path)
    return report
