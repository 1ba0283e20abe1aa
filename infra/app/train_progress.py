"""What ``ebsdlake train`` (and the demo) show while training: a bar per epoch, a closing table.

:class:`TrainProgress` is the driver's progress listener (``train.launch.progress_to``): rank 0's
steps and epochs arrive from Ray, and each epoch's bar shows steps, loss, accuracy, images/s and
the run's time left. :func:`protocol_table` and :func:`result_table` replace a raw JSON dump at
the end; :func:`interrupted` is the one line and exit code of a Ctrl-C.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

EXIT_INTERRUPTED = 130


class TrainProgress:
    """Rich bars fed by ``train.launch``: one per epoch of each run trained in the block.

    Parameters
    ----------
    console
        Where to draw; default stderr (results go to stdout).
    enabled
        Show progress (``False`` keeps the listener silent). Not on a terminal (a log, a
        pipe), each finished epoch is one plain line instead of a live bar.
    """

    def __init__(self, console: Console | None = None, enabled: bool = True) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self.live = enabled and self.console.is_terminal
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TextColumn("steps  loss {task.fields[loss]}  {task.fields[acc]}"),
            TextColumn("{task.fields[rate]} img/s"),
            TimeElapsedColumn(),
            TextColumn("left {task.fields[left]}"),
            console=self.console,
            transient=False,
        )
        self._runs: dict[str, dict[str, Any]] = {}

    def __enter__(self) -> TrainProgress:
        from train.launch import progress_to

        self._listening = progress_to(self)
        self._listening.__enter__()
        if self.live:
            self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._listening.__exit__(*exc)
        if self.live:
            self._progress.stop()

    def run_started(self, run_id: str, epochs: int, steps_per_epoch: int) -> None:
        """Remember the run's length (its bars appear as its epochs start)."""
        self._runs[run_id] = {
            "epochs": epochs, "steps": steps_per_epoch, "tasks": {}, "start": 0,
            "since": time.monotonic(), "steps_done": 0,
        }  # fmt: skip

    def event(self, run_id: str, event: dict[str, Any]) -> None:
        """Update the bars from one worker event (``resume``, ``step`` or ``epoch``)."""
        run = self._runs.get(run_id)
        if run is None or not self.enabled:
            return
        epoch = int(event.get("epoch", 0))
        if event["kind"] == "resume":  # the workers are up: time left counts from here
            run["start"], run["since"] = epoch, time.monotonic()
            if epoch > 0:
                self._progress.console.print(
                    f"{run_id}: resuming after epoch {epoch} of {run['epochs']} (its checkpoint)"
                )
            return
        task = self._task(run_id, run, epoch)
        fields = self._progress.tasks[task].fields
        if event["kind"] == "step":
            run["steps_done"] += 1
            fields["images"] += int(event.get("images", 0))
            self._progress.update(
                task, completed=int(event["step"]), rate=self._rate(task), left=self._left(run)
            )
        elif event["kind"] == "epoch":
            metrics = event.get("metrics", {})
            accuracy = metrics.get("val_accuracy", metrics.get("train_accuracy"))
            which = "val acc" if "val_accuracy" in metrics else "acc"
            loss = metrics.get("loss", metrics.get("source_ce"))
            rate = metrics.get("images_per_s")
            self._progress.update(
                task, completed=run["steps"],
                loss=f"{loss:.3f}" if loss is not None else "-",
                acc=f"{which} {accuracy:.1%}" if accuracy is not None else "acc -",
                rate=f"{rate:,.0f}" if rate is not None else self._rate(task),
                left=self._left(run, finished_epoch=epoch),
            )  # fmt: skip
            self._progress.stop_task(task)
            if not self.live:
                self._print_epoch(task)

    def _print_epoch(self, task: Any) -> None:
        """One plain line for a finished epoch (when the bars are not drawn live)."""
        state = self._progress.tasks[task]
        f = state.fields
        self.console.print(
            f"{state.description}: {int(state.completed)} steps, loss {f['loss']}, "
            f"{f['acc']}, {f['rate']} img/s, {state.elapsed or 0:.1f} s, left {f['left']}",
            highlight=False,
            soft_wrap=True,  # one line per epoch in a log, however narrow
        )

    def run_ended(self, run_id: str) -> None:
        """Stop the clocks of the run's unfinished bars."""
        run = self._runs.get(run_id)
        if run is not None and self.enabled:
            for task in run["tasks"].values():
                self._progress.stop_task(task)

    def _task(self, run_id: str, run: dict[str, Any], epoch: int) -> Any:
        """The bar of ``epoch`` of ``run_id``, added when first needed."""
        if epoch not in run["tasks"]:
            run["tasks"][epoch] = self._progress.add_task(
                f"{run_id} epoch {epoch + 1}/{run['epochs']}", total=run["steps"],
                loss="-", acc="acc -", rate="-", left="-", images=0,
            )  # fmt: skip
        return run["tasks"][epoch]

    def _rate(self, task: Any) -> str:
        """Images per second of an epoch so far (driver clock)."""
        state = self._progress.tasks[task]
        elapsed = state.elapsed or 0.0
        return f"{state.fields['images'] / elapsed:,.0f}" if elapsed > 0 else "-"

    def _left(self, run: dict[str, Any], finished_epoch: int | None = None) -> str:
        """The run's time left from its mean step time in this session, as ``h:mm:ss``."""
        done = run["steps_done"]
        if finished_epoch is not None:
            done = max(done, (finished_epoch + 1 - run["start"]) * run["steps"])
        remaining = (run["epochs"] - run["start"]) * run["steps"] - done
        if done <= 0:
            return "-"
        seconds = max(0.0, remaining) * (time.monotonic() - run["since"]) / done
        return time.strftime("%H:%M:%S", time.gmtime(seconds)).removeprefix("0")


def protocol_table(summary: dict[str, Any]) -> Table:
    """The closing table of ``train``: CV folds, the final model and its held-out accuracy."""
    table = Table(title=f"train: run {summary.get('run_id')}", show_header=False)
    table.add_row("label", str(summary.get("label")))
    table.add_row("training materials", str(len(summary.get("train_ids", []))))
    table.add_row("held-out materials", ", ".join(map(str, summary.get("test_ids", []))) or "-")
    for run_id, accuracy in (summary.get("folds") or {}).items():
        table.add_row(f"  CV {run_id}", f"{accuracy:.1%}")
    cv = summary.get("cv_accuracy")
    if cv:
        table.add_row(
            "CV accuracy", f"{cv['mean']:.1%} (95% {cv['low']:.1%}-{cv['high']:.1%}, n={cv['n']})"
        )
        table.add_row("best epoch count (CV)", str(summary.get("cv_best_epochs")))
    table.add_row("final model epochs", str(summary.get("final_epochs")))
    history = summary.get("final_history") or []
    if history:
        last = history[-1]
        table.add_row(
            "final training loss / accuracy",
            f"{last.get('loss', float('nan')):.3f} / {last.get('train_accuracy', float('nan')):.1%}",
        )
    if "test_accuracy" in summary:
        table.add_row("[bold]held-out accuracy[/]", f"[bold]{summary['test_accuracy']:.1%}[/]")
        for material, accuracy in (summary.get("test_per_material") or {}).items():
            table.add_row(f"  {material}", f"{accuracy:.1%}")
    table.add_row("stored", f"runs/{summary.get('run_id')}/protocol.json in the lake")
    return table


def result_table(title: str, result: dict[str, Any]) -> Table:
    """Any result dict as a two-column table: numbers as they read, dicts one row per key."""
    table = Table(title=title, show_header=False)
    for key, value in result.items():
        if isinstance(value, dict):
            for inner, item in value.items():
                table.add_row(f"{key} {inner}", _cell(item))
        else:
            table.add_row(str(key), _cell(value))
    return table


def _cell(value: Any) -> str:
    """A table cell: floats to 4 digits, lists joined."""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


def interrupted(exc: KeyboardInterrupt, command: str = "train") -> int:
    """Stop this process's Ray, say in one line what Ctrl-C left, and return exit code 130."""
    from infra.ray_runtime import stop_ray

    stop_ray()
    run_id = getattr(exc, "run_id", None)
    where = f"; run {run_id!r} keeps its checkpoints: the same command resumes it" if run_id else ""
    print(f"ebsdlake {command}: interrupted{where}", file=sys.stderr)
    return EXIT_INTERRUPTED


def train_showing_progress(train: Callable[[], list[Any]]) -> int:
    """Run ``train()`` with the progress bars on stderr, then print what it returns (tables,
    lines) on stdout; a Ctrl-C is :func:`interrupted`. Returns the exit code."""
    try:
        with TrainProgress():
            shown = train()
    except KeyboardInterrupt as exc:
        return interrupted(exc)
    console = Console()
    for item in shown:
        console.print(item)
    return 0
