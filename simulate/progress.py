"""Live campaign progress (done / failed / running, throughput, ETA) and the end summary."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from simulate.farm import FarmEvent


class _ThroughputColumn(ProgressColumn):
    """Finished masters per hour since the campaign started."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = 3600.0 * task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:,.1f} masters/h", style="progress.data.speed")


class CampaignProgress:
    """A rich progress bar fed with :class:`~simulate.farm.FarmEvent`s.

    Parameters
    ----------
    total
        Jobs in the campaign.
    enabled
        Show the live bar (the counters are kept either way).
    console
        Where to draw; default stderr.
    """

    def __init__(self, total: int, enabled: bool = True, console: Console | None = None):
        self.total = total
        self.done = 0
        self.failed = 0
        self.running = 0
        self.retried = 0
        self.started_at = time.monotonic()
        self.console = console or Console(stderr=True)
        self._progress = (
            Progress(
                TextColumn("[bold]simulate[/]"),
                BarColumn(),
                TextColumn("{task.fields[counts]}"),
                _ThroughputColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            if enabled
            else None
        )
        self._task = None

    def __enter__(self) -> CampaignProgress:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task("simulate", total=self.total, counts=self.counts)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._refresh()
            self._progress.stop()

    @property
    def counts(self) -> str:
        """``done d/N  failed f  running r`` as shown on the bar."""
        return f"done {self.done}/{self.total}  failed {self.failed}  running {self.running}" + (
            f"  retried {self.retried}" if self.retried else ""
        )

    def __call__(self, event: FarmEvent) -> None:
        """Update the counters from one farm event."""
        if event.kind == "started":
            self.running += 1
        elif event.kind == "complete":
            self.running = max(0, self.running - 1)
            self.done += 1
        elif event.kind == "failed":
            if event.was_running:
                self.running = max(0, self.running - 1)
            self.failed += 1
            if self._progress is not None:
                self.console.print(
                    f"[red]failed[/] {event.job.key}: {event.reason}", highlight=False
                )
        elif event.kind == "retry":
            self.running = max(0, self.running - 1)
            self.retried += 1
        self._refresh()

    def _refresh(self) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=self.done + self.failed, counts=self.counts)


def summary_table(summary) -> Table:
    """A rich table of a :class:`~simulate.campaign.CampaignSummary`."""
    table = Table(title="simulate: campaign summary", show_header=False)
    table.add_row("lake", summary.lake_url)
    table.add_row("jobs run", str(summary.jobs))
    table.add_row("complete", str(summary.completed))
    table.add_row("failed", str(len(summary.failed)))
    table.add_row("skipped (already complete)", str(summary.skipped_complete))
    table.add_row("skipped (failed before; --retry-failed)", str(summary.skipped_failed))
    table.add_row("retries / actor restarts", f"{summary.retries} / {summary.actor_restarts}")
    table.add_row("wall time", f"{summary.wall_time_s:,.1f} s")
    table.add_row("throughput", f"{summary.masters_per_hour:,.1f} masters/h")
    for key, reason in summary.failed[:20]:
        table.add_row(f"[red]failed[/] {key}", reason)
    return table
