"""``ebsdlake runs ls|rm``: the lake's training runs, as things a user lists and removes.

A run is a folder ``runs/<run_id>/`` (``train.runs.run.Run``); ``ls`` shows each one's kind,
label, state (finished, interrupted with a checkpoint to resume, or never trained), held-out
accuracy and when it was created, and ``rm`` deletes runs with their checkpoints.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from rich.console import Console
from rich.table import Table

_STATE_STYLE = {"finished": "green", "interrupted": "yellow", "never trained": "red"}


def _held_out_accuracy(run: Any) -> float | None:
    """The protocol's held-out test accuracy, else the stored evaluation's, else ``None``."""
    from train.errors import TrainingError
    from train.runs.run import EVALUATION_FILE, PROTOCOL_FILE

    for name, key in ((PROTOCOL_FILE, "test_accuracy"), (EVALUATION_FILE, "accuracy")):
        if not run.has(name):
            continue
        try:
            value = run.get_json(name)
        except TrainingError:
            continue
        if isinstance(value, dict) and isinstance(value.get(key), int | float):
            return float(value[key])
    return None


def _row(run: Any) -> list[str]:
    """One ``runs ls`` row: id, kind, label, state, held-out accuracy, created."""
    from train.errors import TrainingError
    from train.runs.run import CONFIG_FILE

    kind = label = "-"
    if run.has(CONFIG_FILE):
        try:
            config = run.config
        except TrainingError:
            kind = "unreadable config"
        else:
            kind = str(config.get("kind", "supervised"))
            label = str((config.get("config") or {}).get("label", "-"))
    state = run.state
    accuracy = _held_out_accuracy(run) if state == "finished" else None
    created = run.created
    return [
        run.run_id,
        kind,
        label,
        f"[{_STATE_STYLE.get(state, 'dim')}]{state}[/]",
        "-" if accuracy is None else f"{accuracy:.4f}",
        "-" if created is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(created)),
    ]


def runs_ls(args: argparse.Namespace) -> int:
    """``ebsdlake runs ls``: one row per run folder of the lake."""
    from train.runs.run import Run, open_lake

    lake = open_lake(args.lake, args.storage_options)
    ids = lake.run_ids()
    view = Table(title=f"{lake.url}: {len(ids)} runs")
    for header in ("run", "kind", "label", "state", "held-out accuracy", "created"):
        view.add_column(header, no_wrap=header == "run")
    for run_id in ids:
        view.add_row(*_row(Run(lake, run_id)))
    console = Console()
    if not console.is_terminal:  # piped or redirected: never cut an id to the terminal width
        console = Console(width=100_000)
    console.print(view)
    return 0


def runs_rm(args: argparse.Namespace) -> int:
    """``ebsdlake runs rm RUN...``: delete runs with their checkpoints (all named runs are
    checked to exist before any is removed)."""
    from train.runs.run import Run, open_lake

    lake = open_lake(args.lake, args.storage_options, mode="r+")
    runs = [Run(lake, run_id).require() for run_id in dict.fromkeys(args.runs)]
    for run in runs:
        state = run.state
        run.remove()
        print(f"removed run {run.run_id} ({state})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``runs ls`` and ``runs rm`` to the ``ebsdlake`` parser."""
    runs = subparsers.add_parser("runs", help="list and remove the lake's training runs")
    actions = runs.add_subparsers(dest="runs_command", metavar="ACTION", required=True)
    ls = actions.add_parser(
        "ls",
        help="list runs: kind, label, state, held-out accuracy, created",
        description="List the lake's training runs: kind, label, state (finished; interrupted, "
        "resumable from its checkpoint; never trained), held-out accuracy and creation time.",
    )
    ls.set_defaults(func=runs_ls)
    rm = actions.add_parser(
        "rm", help="remove runs and their checkpoints", description="Remove runs from the lake."
    )
    rm.add_argument("runs", nargs="+", metavar="RUN", help="run ids (`ebsdlake runs ls`)")
    rm.set_defaults(func=runs_rm)
