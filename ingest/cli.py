"""``ebsdlake ingest prototypes|synthetic|decorated|mp|cif``: put structures into the lake."""

from __future__ import annotations

import argparse
import math
import sys

from ingest.errors import IngestError
from ingest.labels import DEFAULT_SYMPREC
from ingest.writer import IngestReport, ingest, rejection_line, require_some


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``ingest`` and its five sources to the ``ebsdlake`` parser."""
    parser = subparsers.add_parser("ingest", help="put crystal structures into the lake")
    sources = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)

    proto = sources.add_parser("prototypes", help="the paper's experimental phases (bundled)")
    proto.add_argument(
        "--only", nargs="+", metavar="NAME",
        help="phase names or ids, e.g. Ni3Al Si proto-Fe (default: all)",
    )  # fmt: skip
    proto.set_defaults(func=_prototypes)

    syn = sources.add_parser("synthetic", help="random crystals for any of the 230 groups")
    syn.add_argument("--spacegroups", required=True, help="e.g. 1-230 or 221,225")
    syn.add_argument("--per-group", type=int, default=1, help="structures per group (1)")
    syn.add_argument("--seed", type=int, default=0, help="random seed (0)")
    syn.add_argument("--elements", nargs="+", help="element pool (default: 12 common metals)")
    syn.add_argument("--n-elements", type=int, default=2, help="distinct elements (2)")
    _add_volume_per_atom(syn, (10.0, 30.0))
    syn.add_argument("--max-wyckoff", type=int, default=2, help="most Wyckoff sites (2)")
    syn.add_argument("--min-distance", type=float, default=1.8, help="Angstrom (1.8)")
    syn.add_argument(
        "--max-atoms", type=int, default=None, help="most atoms in the conventional cell"
    )
    syn.add_argument(
        "--max-axis-ratio", type=float, default=None, help="longest / shortest cell edge, at most"
    )
    syn.set_defaults(func=_synthetic)

    dec = sources.add_parser(
        "decorated",
        help="classic cubic structure types (L1_2, B2, B3...) decorated with pool elements",
    )
    dec.add_argument(
        "--types", nargs="+", metavar="TYPE", help="structure types (default: all; see docs)"
    )
    dec.add_argument("--per-type", type=int, default=4, help="crystals per type (4)")
    dec.add_argument("--seed", type=int, default=0, help="random seed (0)")
    dec.add_argument("--elements", nargs="+", help="element pool (default: Ti-Cu, neighbours in Z)")
    _add_volume_per_atom(dec, (11.0, 14.0))
    dec.set_defaults(func=_decorated)

    mp = sources.add_parser("mp", help="Materials Project (needs MP_API_KEY)")
    mp.add_argument("--paper-preset", action="store_true", help="Yan et al. 2025 selection")
    mp.add_argument("--spacegroups", help="e.g. 221,225 or 195-230")
    mp.add_argument(
        "--max-volume", type=float, help="largest cell volume, Angstrom^3 (any selection)"
    )
    mp.add_argument("--crystal-system", help="e.g. cubic")
    mp.add_argument("--elements", nargs="+", help="materials must contain all of these")
    mp.add_argument(
        "--num-sites", nargs=2, type=int, metavar=("MIN", "MAX"), help="sites per cell, inclusive"
    )
    mp.add_argument("--endpoint", help="API base URL (default: the public API)")
    mp.set_defaults(func=_materials_project)

    cif = sources.add_parser("cif", help="local CIF files")
    cif.add_argument("paths", nargs="+", metavar="PATH", help="CIF files (first data block)")
    cif.add_argument(
        "--order-disordered",
        action="store_true",
        help="give partially occupied sites their majority species instead of rejecting",
    )
    cif.set_defaults(func=_cif)

    for sub in (proto, syn, dec, mp, cif):
        sub.add_argument(
            "--symprec",
            type=float,
            default=None,
            help=f"spglib tolerance in Angstrom (default [ingest] symprec or {DEFAULT_SYMPREC})",
        )
    return parser


def _add_volume_per_atom(parser: argparse.ArgumentParser, default: tuple[float, float]) -> None:
    """``--volume-per-atom MIN MAX`` (Angstrom^3) with ``default``."""
    parser.add_argument(
        "--volume-per-atom",
        nargs=2,
        type=float,
        metavar=("MIN", "MAX"),
        default=default,
        help=f"Angstrom^3 per atom ({default[0]:g} {default[1]:g})",
    )


def _symprec(args) -> float:
    """``--symprec``, else ``[ingest] symprec``; a tolerance that is not > 0 is refused."""
    cfg = getattr(args, "cfg", None)
    if args.symprec is not None:
        value, where = float(args.symprec), f"--symprec {args.symprec}"
    else:
        section = getattr(cfg, "ingest", None) or {}
        value = float(section.get("symprec", DEFAULT_SYMPREC))
        origin = cfg.origin("ingest", "symprec") if cfg is not None else "[ingest] symprec"
        where = f"{origin} = {value}"
    if not (math.isfinite(value) and value > 0):
        raise IngestError(f"{where}: must be a positive tolerance in Angstrom (e.g. 0.01)")
    return value


def _open_lake(args):
    """The lake to ingest into; ingest is the first command a user runs, so it creates the
    lake when there is none and says so on stderr (a mistyped URL is visible at once)."""
    from lake import Lake

    options = getattr(args, "storage_options", None) or {}
    lake = Lake.open(args.lake, storage_options=options, create=True)
    if lake.created:
        print(f"ingest: created a new lake at {lake.url}", file=sys.stderr)
    return lake


def _finish(report: IngestReport) -> int:
    for what, reason in report.rejected:
        print(f"rejected {rejection_line(what, reason)}", file=sys.stderr)
    print(report.summary())
    require_some(report)
    return 0


def _prototypes(args) -> int:
    from ingest.prototypes import load_prototypes, prototype_names

    report = IngestReport()
    names = _prototype_names(args.only) if args.only else prototype_names()
    records = load_prototypes(names, _symprec(args), on_reject=report.reject)
    ingest(_open_lake(args), records, report, total=len(names), description="prototypes")
    return _finish(report)


def _prototype_names(wanted: list[str]) -> list[str]:
    """``--only`` names resolved to phase names: a name, its lake id (``proto-Ni``) or its
    formula in any order (``AlNi3``); an excluded phase is left to the loader, which says why."""
    from ingest.prototypes import prototype_id, prototype_names, prototype_table
    from lake.material_ids import resolve_name

    excluded = prototype_table().get("excluded", {})
    aliases = {name: [prototype_id(name)] for name in prototype_names()}
    resolved = [
        name if name in excluded
        else resolve_name(name, aliases, "--only", what="prototype",
                          hint=f"valid: {', '.join(aliases)}")
        for name in wanted
    ]  # fmt: skip
    return list(dict.fromkeys(resolved))


def _synthetic(args) -> int:
    from ingest.spacegroups import parse_space_groups
    from ingest.synthetic import DEFAULT_ELEMENTS, SyntheticParams, generate

    groups = parse_space_groups(args.spacegroups)
    params = SyntheticParams(
        elements=tuple(args.elements or DEFAULT_ELEMENTS),
        n_elements=args.n_elements,
        volume_per_atom=tuple(args.volume_per_atom),
        max_wyckoff=args.max_wyckoff,
        min_distance=args.min_distance,
        max_atoms=args.max_atoms,
        max_axis_ratio=args.max_axis_ratio,
        symprec=_symprec(args),
    ).validated()
    report = IngestReport()
    records = generate(groups, args.per_group, args.seed, params, on_reject=report.reject)
    total = len(groups) * args.per_group
    ingest(_open_lake(args), records, report, total=total, description="synthetic")
    return _finish(report)


def _decorated(args) -> int:
    from ingest.structure_types import (
        NEIGHBOUR_ELEMENTS,
        generate_decorated,
        parse_structure_types,
    )

    types = parse_structure_types(args.types)
    report = IngestReport()
    records = generate_decorated(
        types,
        args.per_type,
        args.seed,
        elements=args.elements or NEIGHBOUR_ELEMENTS,
        volume_per_atom=tuple(args.volume_per_atom),
        symprec=_symprec(args),
        on_reject=report.reject,
    )
    total = len(types) * args.per_type
    ingest(_open_lake(args), records, report, total=total, description="decorated")
    return _finish(report)


def _mp_query(args):
    from ingest.materials_project import MPQuery
    from ingest.spacegroups import parse_space_groups

    if args.paper_preset:
        if args.spacegroups or args.max_volume is not None:
            raise IngestError(
                "--paper-preset fixes the groups and volumes; drop --spacegroups/--max-volume"
            )
        groups = MPQuery.paper_preset().max_volume_by_group
    else:
        groups = dict.fromkeys(parse_space_groups(args.spacegroups) if args.spacegroups else [])
    return MPQuery(
        max_volume_by_group=groups,
        crystal_system=args.crystal_system.lower() if args.crystal_system else None,
        elements=tuple(args.elements or ()),
        num_sites=tuple(args.num_sites) if args.num_sites else None,
        max_volume=args.max_volume,
    ).validated()


def _materials_project(args) -> int:
    from ingest.materials_project import query, resolve_api_key

    section = getattr(getattr(args, "cfg", None), "ingest", None) or {}
    symprec = _symprec(args)
    mp_query = _mp_query(args)
    key = resolve_api_key(section.get("mp_api_key"))
    lake = _open_lake(args)
    report = IngestReport()
    records = query(
        mp_query,
        api_key=key,
        endpoint=args.endpoint,
        skip_ids=lake.structure_ids(),
        symprec=symprec,
        on_reject=report.reject,
        on_skip=report.skipped.append,
    )
    ingest(lake, records, report, description="materials project")
    return _finish(report)


def _cif(args) -> int:
    from ingest.cif import read_cifs

    report = IngestReport()
    notes: list[str] = []  # printed after the progress bar, one line each
    records = read_cifs(
        args.paths, args.order_disordered, _symprec(args), report.reject, notes.append
    )
    ingest(_open_lake(args), records, report, total=len(args.paths), description="cif")
    for line in notes:
        print(f"warning: {line}", file=sys.stderr)
    return _finish(report)
