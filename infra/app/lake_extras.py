"""Lake subcommands that need other stages: ``lake show --patterns`` and ``lake import-emsoft``.

``lake/`` must not import torch or ray, so the commands that project patterns (train) or read
EMsoft files into the lake (simulate) are attached here, next to the lake's own commands.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _pattern_count(text: str) -> int:
    """``--patterns N``: a whole number >= 0 (0: no figure), checked before the table prints."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if count < 0:
        raise argparse.ArgumentTypeError(f"{count} patterns: must be 0 or more")
    return count


def _attach_patterns_option(lake_sub: argparse._SubParsersAction) -> None:
    show = lake_sub.choices.get("show")
    if show is None:
        return
    show.add_argument(
        "--patterns",
        type=_pattern_count,
        default=0,
        metavar="N",
        help="also project N random-orientation patterns and save a grid figure",
    )
    show.add_argument(
        "--out", default=None, help="figure path for --patterns (default MATERIAL-patterns.png)"
    )
    show.add_argument("--seed", type=int, default=0, help="orientation seed for --patterns")
    show.add_argument(
        "--with",
        dest="with_materials",
        nargs="+",
        default=[],
        metavar="MATERIAL",
        help="more materials as further rows of the --patterns grid",
    )
    lake_show = show.get_default("func")

    def show_with_patterns(args: argparse.Namespace) -> int:
        code = int(lake_show(args) or 0) if lake_show else 0
        if code or not args.patterns:
            return code
        from train.patterns.figures import pattern_grid

        materials = [args.material, *args.with_materials]
        out = Path(args.out or f"{materials[0]}-patterns.png")
        path = pattern_grid(
            args.lake, args.storage_options, materials, args.patterns, out, seed=args.seed
        )
        print(f"wrote {path}")
        return 0

    show.set_defaults(func=show_with_patterns)


def register(lake_sub: argparse._SubParsersAction) -> None:
    """Add the cross-stage lake commands to the ``lake`` command group."""
    from simulate.cli import register_lake_import

    _attach_patterns_option(lake_sub)
    register_lake_import(lake_sub)
