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
from lake.material_ids import resolve_material_ids

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
    ("n_energies", "n_energies"),
)
LS_FORMATS = ("table", "csv", "json")


def register(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Add the ``lake`` command group; return its sub-parsers for further commands."""
    lake_parser = subparsers.add_parser("lake", help="inspect and maintain the lake")
    commands = lake_parser.add_subparsers(dest="lake_command", metavar="COMMAND", required=True)
    ls = add_lake_command(commands, "ls", "list structures and their masters with status", _ls)
    ls.add_argument(
        "--format",
        choices=LS_FORMATS,
        default="table",
        help="table (whole ids, never cut, when piped), or csv / json with every catalog column",
    )
    show = add_lake_command(commands, "show", "show one material's labels and masters", _show)
    show.add_argument(
        "material", help="material id (e.g. mp-149), or a formula that names one material"
    )
    verify = add_lake_command(
        commands, "verify", "re-read every chunk against its checksum", _verify
    )
    verify.add_argument("--quiet", action="store_true", help="print only problems")
    verify.add_argument(
        "--repair",
        action="store_true",
        help="mark corrupt masters damaged (shown by `lake ls`); `simulate` then redoes them",
    )
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
    return {"complete": "green", "failed": "red", "damaged": "bold red"}.get(status, "dim")


def _ls(args: argparse.Namespace) -> int:
    lake = open_lake(args)
    table = lake.catalog()
    fmt = getattr(args, "format", "table")
    if fmt != "table":
        _print_records(table, fmt)
        _warn_unreadable(table.attrs.get("unreadable", {}))
        return 0
    console = Console()
    if not console.is_terminal:  # piped or redirected: never cut an id to the terminal width
        console = Console(width=100_000)
    view = Table(title=f"{lake.url}: {table.material_id.nunique()} materials")
    for column, header in _LS_COLUMNS:
        whole = column in ("material_id", "variant")
        view.add_column(header, overflow="fold" if whole else "ellipsis")
    for row in table.itertuples(index=False):
        cells = [_text(getattr(row, column)) for column, _ in _LS_COLUMNS]
        status = _text(row.status)
        cells[[c for c, _ in _LS_COLUMNS].index("status")] = f"[{_status_style(status)}]{status}[/]"
        view.add_row(*cells)
    console.print(view)
    _warn_unreadable(table.attrs.get("unreadable", {}))
    return 0


def _print_records(table: Any, fmt: str) -> None:
    """The catalog as CSV or a JSON list of objects on stdout (missing values empty / null)."""
    import json
    import sys

    if fmt == "csv":
        table.to_csv(sys.stdout, index=False)
        return
    records = [
        {key: (None if _text(value) == "-" else value) for key, value in row.items()}
        for row in table.to_dict(orient="records")
    ]
    print(json.dumps(records, indent=1, default=_json_default))


def _json_default(value: Any) -> Any:
    """numpy scalars as Python numbers, anything else as its text."""
    return value.item() if hasattr(value, "item") else str(value)


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
    # a formula or name that names one material shows it; several or none list the ids
    args.material = resolve_material_ids(lake, [args.material], "show")[0]
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
    lake = open_lake(args, mode="r+" if args.repair else "r")
    report = lake.verify(progress=not args.quiet, repair=args.repair)
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
    for line in report.advice():
        console.print(f"fix: {line}", highlight=False)
    return 0 if report.ok else 1


def _rm(args: argparse.Namespace) -> int:
    if args.variant is None and not args.material:
        raise LakeInputError("lake rm: a material id is required")
    lake = open_lake(args, mode="r+")
    lake.remove(args.material, variant=args.variant)
    what = f"{args.material} variant {args.variant}" if args.variant else args.material
    Console().print(f"removed {what}")
    return 0
