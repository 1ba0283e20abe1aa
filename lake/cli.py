"""``ebsdlake lake ls|show|verify|rm``: inspect and maintain a lake from the shell.

``register(subparsers)`` is called by ``infra.app.cli``; it returns the ``lake`` sub-command
group so that other packages can add commands (``lake show --patterns``, ``lake import-emsoft``)
with :func:`add_lake_command`.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from lake.errors import LakeInputError
from lake.lake import Lake

_LS_COLUMNS = (
    ("material_id", "material"),
    ("formula", "formula"),
    ("source", "source"),
    ("spacegroup_symbol", "SG"),
    ("spacegroup_number", "#"),
    ("disordered_spacegroup_symbol", "disordered SG"),
    ("disordered_spacegroup_number", "#"),
    ("variant", "variant"),
    ("status", "status"),
    ("npx", "npx"),
    ("n_energies", "energies"),
)


def register(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Add the ``lake`` command group; return its sub-parsers for further commands."""
    lake_parser = subparsers.add_parser("lake", help="inspect and maintain the lake")
    commands = lake_parser.add_subparsers(dest="lake_command", metavar="COMMAND", required=True)
    add_lake_command(commands, "ls", "list structures and their masters with status", _ls)
    show = add_lake_command(commands, "show", "show one material's labels and masters", _show)
    show.add_argument("material", help="material id, e.g. mp-149")
    verify = add_lake_command(
        commands, "verify", "re-read every chunk against its checksum", _verify
    )
    verify.add_argument("--quiet", action="store_true", help="print only problems")
    remove = add_lake_command(commands, "rm", "remove a material or one of its variants", _rm)
    remove.add_argument("material", help="material id")
    remove.add_argument("--variant", default=None, help="remove only this variant")
    return commands


def add_lake_command(
    commands: argparse._SubParsersAction,
    name: str,
    help_text: str,
    handler: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    """Add ``ebsdlake lake <name>`` with ``handler(args) -> exit code``; return its parser."""
    parser = commands.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(func=handler)
    return parser


def open_lake(args: argparse.Namespace, mode: str = "r") -> Lake:
    """Open the lake named by the global ``--lake`` option (infra sets ``args.lake``)."""
    url = getattr(args, "lake", None) or "./lake.zarr"
    return Lake.open(url, storage_options=getattr(args, "storage_options", None) or {}, mode=mode)


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _status_style(status: str) -> str:
    return {"complete": "green", "failed": "red"}.get(status, "dim")


def _ls(args: argparse.Namespace) -> int:
    lake = open_lake(args)
    table = lake.catalog()
    view = Table(title=f"{lake.url}: {table.material_id.nunique()} materials")
    for _, header in _LS_COLUMNS:
        view.add_column(header)
    for row in table.itertuples(index=False):
        cells = [_text(getattr(row, column)) for column, _ in _LS_COLUMNS]
        status = _text(row.status)
        cells[[c for c, _ in _LS_COLUMNS].index("status")] = f"[{_status_style(status)}]{status}[/]"
        view.add_row(*cells)
    Console().print(view)
    _warn_unreadable(table.attrs.get("unreadable", {}))
    return 0


def _warn_unreadable(unreadable: dict[str, str]) -> None:
    """One line on stderr when groups were left out because their metadata does not parse."""
    if unreadable:
        path, reason = next(iter(unreadable.items()))
        more = f" and {len(unreadable) - 1} more" if len(unreadable) > 1 else ""
        Console(stderr=True).print(
            f"[yellow]left out {len(unreadable)} group(s) with unreadable metadata: {path} "
            f"({reason}){more}; `ebsdlake lake verify` lists them all[/]",
            highlight=False,
        )


def _show(args: argparse.Namespace) -> int:
    lake = open_lake(args)
    structure = lake.structure(args.material)
    console = Console()
    labels = Table(title=f"{args.material}", show_header=False)
    labels.add_column("field")
    labels.add_column("value")
    for key, value in structure.items():
        if key != "cif":
            labels.add_row(key, _text(value))
    labels.add_row("cif", f"{len(structure.get('cif', ''))} characters")
    console.print(labels)
    rows = lake.catalog()
    _warn_unreadable(
        {
            path: why
            for path, why in rows.attrs.get("unreadable", {}).items()
            if path.split("/")[1] == args.material
        }
    )
    rows = rows[(rows.material_id == args.material) & rows.variant.notna()]
    masters = Table(title="masters")
    for header in ("variant", "status", "npx", "energies (keV)", "B (nm^2)", "engine", "note"):
        masters.add_column(header)
    for row in rows.itertuples(index=False):
        energies = (
            f"{_text(row.energy_min_kev)}-{_text(row.energy_max_kev)} ({_text(row.n_energies)})"
        )
        masters.add_row(
            row.variant,
            f"[{_status_style(row.status)}]{row.status}[/]",
            _text(row.npx),
            energies,
            _text(round(row.bfactor_nm2, 5) if row.bfactor_nm2 == row.bfactor_nm2 else None),
            f"{_text(row.engine)} {_text(row.engine_version)}",
            _text(row.failure_reason),
        )
    console.print(masters)
    return 0


def _verify(args: argparse.Namespace) -> int:
    lake = open_lake(args)
    report = lake.verify(progress=not args.quiet)
    console = Console()
    problems = Table(title="problems")
    problems.add_column("group")
    problems.add_column("state")
    problems.add_column("reason")
    for state, paths in (
        ("corrupt", report.corrupt),
        ("incomplete", report.incomplete),
        ("failed", report.failed),
    ):
        for path in paths:
            problems.add_row(path, state, report.reasons.get(path, ""))
    if problems.row_count:
        console.print(problems)
    console.print(
        f"checked {report.checked} groups: {len(report.corrupt)} corrupt, "
        f"{len(report.incomplete)} incomplete, {len(report.failed)} failed simulations"
    )
    return 0 if report.ok else 1


def _rm(args: argparse.Namespace) -> int:
    if args.variant is None and not args.material:
        raise LakeInputError("lake rm: a material id is required")
    lake = open_lake(args, mode="r+")
    lake.remove(args.material, variant=args.variant)
    what = f"{args.material} variant {args.variant}" if args.variant else args.material
    Console().print(f"removed {what}")
    return 0
