"""``ebsdlake calibrate | model export | model ls``: calibrated runs and model packages.

``calibrate RUN`` fits the run's temperature and uncertainty threshold on held-out simulated
patterns (``train.runs.calibrate``); ``model export RUN NAME`` writes the run as a portable
package (``train.runs.package``); ``model ls`` lists shipped packages and the lake's packaged
runs with their card's headline figures. Handlers return an exit code and raise
``TrainingError`` (a ValueError) for user errors, which ``infra.app.cli`` prints as one line.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``calibrate`` and ``model`` to the ``ebsdlake`` parser."""
    calibrate = subparsers.add_parser(
        "calibrate",
        help="fit a run's temperature and 'uncertain' threshold on held-out simulated patterns",
        description=(
            "Temperature scaling fitted on simulated patterns of the run's validation materials "
            "(else its held-out test materials), grouped by material; writes calibration.json "
            "with the expected calibration error (15 bins) before and after and the threshold "
            "below which predict says 'uncertain'."
        ),
    )
    calibrate.add_argument("run", metavar="RUN", help="run id (`ebsdlake runs ls`)")
    calibrate.add_argument(
        "--patterns-per-material", type=int, default=100, help="projections per material (100)"
    )
    calibrate.add_argument(
        "--materials", nargs="+", default=None, help="held-out material ids to calibrate on"
    )
    calibrate.add_argument(
        "--target-precision",
        type=float,
        default=None,
        help="fraction of confident calls that must be right (0.9)",
    )
    calibrate.set_defaults(func=calibrate_handler)

    model = subparsers.add_parser("model", help="model packages: export a run, list models")
    actions = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    export = actions.add_parser(
        "export",
        help="write a calibrated run as a package folder (weights, classes, reading, card)",
    )
    export.add_argument("run", metavar="RUN", help="run id (`ebsdlake runs ls`)")
    export.add_argument("name", metavar="NAME", help="package name (`predict --model NAME`)")
    export.add_argument(
        "--out",
        default="models",
        help="parent folder (default models/; train/shipped_models/ to ship it)",
    )
    export.set_defaults(func=export_handler)
    listing = actions.add_parser("ls", help="shipped models and the lake's packaged runs")
    listing.set_defaults(func=ls_handler)
    _register_build(actions)


def _register_build(actions: argparse._SubParsersAction) -> None:
    """``model build RECIPE``: the whole recipe into the lake, then its package."""
    from infra.app.recipes import RECIPES

    build = actions.add_parser(
        "build",
        help="ingest, simulate, train, evaluate, calibrate and package a named recipe",
        description="Runs a recipe (infra/app/recipes.py) into --lake and writes its package; "
        "stages reuse what the lake holds, so a stopped build goes on where it stopped.",
    )
    build.add_argument("recipe", metavar="RECIPE", choices=sorted(RECIPES), help=", ".join(RECIPES))
    build.add_argument(
        "--out", default="models", help="parent folder of the package (default models/)"
    )
    build.add_argument(
        "--scale", type=int, default=1, help="k x the crystals, patterns and epochs (1)"
    )
    build.add_argument("--workers", type=int, default=1, help="Ray Train workers (1)")
    build.add_argument("--gpu", action="store_true", help="one GPU per Ray Train worker")
    build.add_argument(
        "--cpu-threads", type=int, default=None, metavar="N",
        help="torch CPU threads per Ray Train worker (default: the recipe's; other weights)",
    )  # fmt: skip
    build.set_defaults(func=build_handler)


def build_handler(args: argparse.Namespace) -> int:
    """``ebsdlake model build RECIPE``: run it and print where the package went."""
    from infra.app.model_build import build_model
    from infra.app.recipes import recipe

    chosen = recipe(args.recipe)
    if args.scale != 1 or args.workers != 1 or args.gpu:
        chosen = chosen.scaled(args.scale, args.workers, args.gpu)
    if args.cpu_threads is not None:
        chosen = chosen.refine(training=chosen.training.refine(cpu_threads=args.cpu_threads))
    address = getattr(getattr(args.cfg, "ray", None), "address", None) or None
    command = rebuild_command(args)
    build_model(chosen, args.lake, args.out, args.storage_options, address, command=command)
    return 0


def rebuild_command(args: argparse.Namespace) -> str:
    """The ``model build`` command the card records, with every flag that changes the model."""
    words = ["ebsdlake --lake LAKE model build", args.recipe]
    if args.scale != 1:
        words.append(f"--scale {args.scale}")
    if args.workers != 1:
        words.append(f"--workers {args.workers}")
    if args.gpu:
        words.append("--gpu")
    if args.cpu_threads is not None:
        words.append(f"--cpu-threads {args.cpu_threads}")
    return " ".join(words)


def calibrate_handler(args: argparse.Namespace) -> int:
    """``ebsdlake calibrate RUN``: fit, store and print the run's calibration."""
    from train.errors import TrainingError
    from train.runs.calibrate import calibrate_run
    from train.runs.calibration import TARGET_PRECISION

    target = TARGET_PRECISION if args.target_precision is None else args.target_precision
    if not 0 < target <= 1:
        raise TrainingError(f"--target-precision {target}: must be in (0, 1]")
    calibration = calibrate_run(
        args.lake, args.storage_options, args.run, args.patterns_per_material, args.materials,
        target,
    )  # fmt: skip
    print(
        f"{args.run}: temperature {calibration.temperature:.3f}; ECE (15 bins) "
        f"{calibration.ece_before:.4f} -> {calibration.ece_after:.4f} on "
        f"{calibration.n_patterns} patterns of {len(calibration.fit_materials)} materials"
    )
    if calibration.check_materials:
        print(
            f"  on {len(calibration.check_materials)} check materials not fitted: ECE "
            f"{calibration.check_ece_before:.4f} -> {calibration.check_ece_after:.4f}"
        )
    reached = "" if calibration.target_reached else " (target precision not reached)"
    print(
        f"  uncertain below {calibration.threshold:.3f}{reached}: confident calls "
        f"{calibration.coverage:.1%} of the fit set, "
        f"{'-' if calibration.precision is None else f'{calibration.precision:.1%}'} right"
    )
    return 0


def export_handler(args: argparse.Namespace) -> int:
    """``ebsdlake model export RUN NAME``: write the package folder and print its headline."""
    import json

    from train.runs.package import headline
    from train.runs.run import CARD_FILE

    folder = export_model_cli(args)
    card = json.loads((folder / CARD_FILE).read_text())
    figures = headline(card)
    print(
        f"wrote {folder} ({card['size_mb']} MB weights): held-out accuracy "
        f"{figures['accuracy']}, ECE {figures['ece']}"
    )
    return 0


def export_model_cli(args: argparse.Namespace):
    """Run the export with the CLI's arguments (the lake, run, name, ``--out``)."""
    from train.runs.package import export_model

    return export_model(args.lake, args.storage_options, args.run, args.name, args.out)


def ls_handler(args: argparse.Namespace) -> int:
    """``ebsdlake model ls``: one line per model with its card's headline figures."""
    from train.runs.package import list_models

    rows = list_models(args.lake, args.storage_options)
    if not rows:
        print("no models: none shipped, and no run of the lake has a card (`model export`)")
        return 0
    for row in rows:
        print(
            f"{row['name']:<24} {row['where']:<9} {row['label']:<30} {row['classes']:<30} "
            f"accuracy {row['accuracy']}; ECE {row['ece']}; trained at {row['beam_kv']} kV"
        )
    return 0
