"""Writing records into the lake: skip what is there, count what is refused, leave nothing
half-written.

``Lake.put_structure`` writes a structure's attributes and its completion marker in one atomic
write, so an interrupted ingest leaves every structure either complete or absent; re-running
skips the complete ones (resumable).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ingest.errors import IngestError
from ingest.progress import progress_bar
from ingest.record import StructureRecord


@dataclass
class IngestReport:
    """What one ingest run did.

    Attributes
    ----------
    ingested
        Ids written to the lake.
    skipped
        Ids already complete in the lake (not rewritten).
    rejected
        ``(id or file, reason)`` for every structure refused.
    """

    ingested: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)

    def reject(self, what: str, reason: str) -> None:
        """Record a refused structure (usable as a source's ``on_reject`` callback)."""
        self.rejected.append((what, reason))

    def summary(self) -> str:
        """One line: ``ingested N, skipped M existing, rejected K``."""
        return (
            f"ingested {len(self.ingested)}, skipped {len(self.skipped)} existing, "
            f"rejected {len(self.rejected)}"
        )


def ingest(
    lake,
    records: Iterable[StructureRecord],
    report: IngestReport | None = None,
    progress: bool = True,
    total: int | None = None,
    description: str = "ingest",
) -> IngestReport:
    """Store ``records`` in ``lake`` under ``structures/<material_id>``.

    Parameters
    ----------
    lake
        A ``lake.Lake`` opened for writing.
    records
        Records (any iterable; generators are consumed lazily, so generation and writing
        interleave and an interruption loses at most the structure being built).
    report
        Report to add to (e.g. one whose ``reject`` the sources already call).
    progress
        Show a progress bar on stderr.
    total
        Expected number of records, for the progress bar.
    description
        Progress-bar label.
    """
    report = report if report is not None else IngestReport()
    existing = set(lake.structure_ids())
    with progress_bar(description, total=total, enabled=progress) as advance:
        for record in records:
            if record.material_id in existing:
                report.skipped.append(record.material_id)
            else:
                cif, attrs = record.to_lake()
                try:
                    lake.put_structure(record.material_id, cif=cif, attrs=attrs)
                except ValueError as exc:
                    report.reject(record.material_id, str(exc))
                else:
                    existing.add(record.material_id)
                    report.ingested.append(record.material_id)
            advance()
    return report


def rejection_line(what: str, reason: str) -> str:
    """``what: reason``, or ``reason`` alone when it already starts with ``what`` (a file's
    errors name the file)."""
    return reason if reason.startswith(what) else f"{what}: {reason}"


def require_some(report: IngestReport) -> None:
    """Raise when nothing was ingested or skipped and something was rejected."""
    if report.rejected and not (report.ingested or report.skipped):
        line = rejection_line(*report.rejected[0])
        raise IngestError(f"nothing ingested; first rejection: {line}")
