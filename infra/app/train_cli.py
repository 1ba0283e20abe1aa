"""``ebsdlake train | predict``: the training side's subcommands.

``register(subparsers)`` is called by ``infra.app.cli``; handlers return an exit code and raise
``TrainingError`` (a ValueError) for user errors, which infra prints as one line.
``predict``'s handler lives in ``infra.app.predict_cli``, ``bench science`` in
``infra.app.bench_cli``, ``runs ls|rm`` in ``infra.app.runs_cli``, ``evaluate`` in
``infra.app.evaluate_cli``.

``train`` takes each setting from its flag, else the ``[train]`` key of the configuration, else
the built-in (paper) default, and checks everything it can (settings, lake, materials, held-out
ids, existing runs, target files) before it starts Ray.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from infra.app.predict_cli import predict_handler
from train.config_section import PAPER_HOLDOUT_FRACTION
from train.errors import TrainingError
from train.mcd import MCDConfig
from train.patterns.detector import PC_CONVENTIONS
from train.run_config import DEGRADATIONS
from train.supervised import SupervisedConfig
from train.targets import LABEL_TARGETS, label_attribute

SUPERVISED, MCD = SupervisedConfig(), MCDConfig()
"""The built-in (paper) settings the CLI's defaults are read from."""


def _config_value(args: argparse.Namespace, key: str, explicit_only: bool = False) -> Any:
    """The ``[train]`` value of ``key`` from the effective config, or ``None``.

    ``explicit_only`` skips values that come from the embedded defaults (the supervised paper
    settings), so MCD keeps its own paper defaults unless the file or environment sets a key.
    """
    cfg = getattr(args, "cfg", None)
    section = getattr(cfg, "train", None)
    if section is None:
        return None
    value = section.get(key) if isinstance(section, dict) else getattr(section, key, None)
    if explicit_only and key not in _explicit_train_keys(cfg):
        return None
    return value


def _explicit_train_keys(cfg: Any) -> set[str]:
    """``[train]`` keys set by the config file or the environment (not embedded defaults)."""
    origins = getattr(cfg, "origins", None) or {}  # infra.config.Config: file and env keys only
    return {key.split(".", 1)[1] for key in origins if key.startswith("train.")}


def _target_name(label: str | None) -> str | None:
    """A label target name for ``label`` (config files may give the attribute key)."""
    names = {attribute: name for name, attribute in LABEL_TARGETS.items()}
    return names.get(label, label) if label is not None else None


def label_choice(text: str) -> str:
    """``--label``: a target name, optionally scoped (``NAME@V,V...``); argparse's one-line
    error otherwise."""
    try:
        label_attribute(text)
    except TrainingError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _pc_range(values: list[float] | None) -> tuple | None:
    """``--pc-range XL XH YL YH ZL ZH`` as three (low, high) pairs."""
    if values is None:
        return None
    return tuple((values[i], values[i + 1]) for i in (0, 2, 4))


def _run_settings(args: argparse.Namespace, mcd: bool) -> dict[str, Any]:
    """Training settings: the flag, else the ``[train]`` key, else left to the config class's
    built-in default (omitted). MCD takes only ``[train]`` keys set explicitly, and has no
    SGD keys (``momentum``, ``lr_step_epochs``, ``lr_gamma``, ``lr_schedule``)."""

    def pick(flag: Any, key: str) -> Any:
        return flag if flag is not None else _config_value(args, key, explicit_only=mcd)

    settings = {
        "label": _target_name(pick(args.label, "label")),
        "arch": pick(args.model, "model"),
        "epochs": pick(args.epochs, "epochs"),
        "batch_size": pick(args.batch_size, "batch_size"),
        "lr": pick(args.lr, "lr"),
        "image_size": pick(args.image_size, "image_size"),
        "num_workers": pick(args.workers, "num_workers"),
        "use_gpu": True if args.gpu else pick(None, "use_gpu"),
        "cpu_threads": pick(getattr(args, "cpu_threads", None), "cpu_threads"),
        "steps_per_epoch": args.steps_per_epoch,
        "patterns_per_material": args.patterns_per_material,
        "variants": tuple(args.variants),
        "weights_path": args.weights,
        "seed": args.seed,
        "pc_range": _pc_range(getattr(args, "pc_range", None)),
        "pc": tuple(args.pc) if getattr(args, "pc", None) else None,
        "degrade": getattr(args, "degrade", None) or None,
        "detector_shape": tuple(args.detector_shape)
        if getattr(args, "detector_shape", None)
        else None,
    }
    if mcd:
        settings["top_n"] = args.top_n
        if getattr(args, "lr_schedule", None):
            raise TrainingError("--lr-schedule: only supervised runs have a schedule (not --mcd)")
        if getattr(args, "init_from", None):
            raise TrainingError(
                "--init-from: only supervised runs start from a package (not --mcd)"
            )
    else:
        for key in ("momentum", "lr_step_epochs", "lr_gamma"):
            settings[key] = _config_value(args, key)
        settings["lr_schedule"] = pick(getattr(args, "lr_schedule", None), "lr_schedule")
        settings["init_from"] = pick(getattr(args, "init_from", None), "init_from")
    return {key: value for key, value in settings.items() if value is not None}


def _at_least_one(option: str, value: int | None) -> None:
    """Raise :class:`TrainingError` naming ``option`` when ``value`` is below 1."""

    if value is not None and value < 1:
        raise TrainingError(f"{option} {value}: must be >= 1")


def _resolve_materials(lake: Any, args: argparse.Namespace) -> None:
    """``--materials`` and ``--test-ids`` as lake ids (a formula that names one material is
    accepted; one that names several or none is refused, listing the ids)."""
    from lake.material_ids import resolve_material_ids

    for option in ("--materials", "--test-ids"):
        dest = option.removeprefix("--").replace("-", "_")
        if getattr(args, dest, None):
            setattr(args, dest, resolve_material_ids(lake, getattr(args, dest), option))


def _start_ray(args: argparse.Namespace) -> str | None:
    """Start or join Ray as the ``[ray]`` config says; return the address to pass on."""
    from infra.ray_runtime import ensure_ray

    address = getattr(getattr(args.cfg, "ray", None), "address", None) or None
    ensure_ray(address, getattr(getattr(args.cfg, "ray", None), "num_cpus", None) or None)
    return address


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train`` and ``predict`` to the ``ebsdlake`` parser."""
    train = subparsers.add_parser(
        "train",
        help="train a space-group classifier (supervised k-fold protocol or MCD) on Ray Train",
    )
    train.add_argument(
        "--label", default=None, type=label_choice, metavar="TARGET[@V,V...]",
        help=f"what the network learns: {', '.join(sorted(LABEL_TARGETS))} ([train] label; "
        "paper: spacegroup); TARGET@V,V...: those values, and one class 'outside' for every "
        "other material (e.g. disordered_spacegroup@221,223,225,227,229)",
    )  # fmt: skip
    train.add_argument(
        "--folds", type=int, default=None, help="CV folds ([train] folds, paper 5; 1: none)"
    )
    train.add_argument(
        "--epochs", type=int, default=None, help="passes over the data ([train] epochs; MCD 20)"
    )
    train.add_argument(
        "--workers", type=int, default=None, help="Ray Train workers ([train] num_workers)"
    )
    train.add_argument("--gpu", action="store_true", help="one GPU per worker")
    train.add_argument(
        "--cpu-threads", type=int, default=None, metavar="N",
        help="torch CPU threads per worker ([train] cpu_threads; default: its Ray CPUs, 1)",
    )  # fmt: skip
    train.add_argument(
        "--holdout-fraction",
        type=float,
        default=PAPER_HOLDOUT_FRACTION,
        help=f"share of each label's materials held out (default {PAPER_HOLDOUT_FRACTION})",
    )
    train.add_argument(
        "--run-id", default=None, help="name of the run (default: <kind>-<date>-<time>)"
    )
    train.add_argument(
        "--model", default=None,
        help="network ([train] model): resnet18 (supervised), resnet50 (MCD), resnet10 (tests)",
    )  # fmt: skip
    train.add_argument("--arch", dest="model", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    train.add_argument("--weights", default=None, help="local ImageNet state dict (.pth)")
    train.add_argument(
        "--batch-size", type=int, default=None, help="patterns per step ([train] batch_size)"
    )
    train.add_argument(
        "--image-size", type=int, default=None, help="network input px ([train] image_size)"
    )
    train.add_argument(
        "--lr", type=float, default=None, help="learning rate ([train] lr; MCD 2e-4)"
    )
    train.add_argument(
        "--lr-schedule", choices=("step", "cosine"), default=None,
        help="step: x lr_gamma every lr_step_epochs (the paper's); cosine: lr down to 0 over "
        "the epochs ([train] lr_schedule)",
    )  # fmt: skip
    train.add_argument(
        "--init-from",
        default=None,
        metavar="MODEL",
        help="start from a model package's network (shipped name or folder; its last layer is "
        "replaced for this run's classes) ([train] init_from)",
    )
    train.add_argument(
        "--steps-per-epoch", type=int, default=None,
        help="steps per epoch (default: from --patterns-per-material)",
    )  # fmt: skip
    train.add_argument(
        "--patterns-per-material",
        type=int,
        default=SUPERVISED.patterns_per_material,
        help="projections per training material and epoch (sets the epoch length)",
    )
    train.add_argument(
        "--variants", nargs="+", default=["default"], metavar="VARIANT",
        help="B-factor variants of each master to train on (default)",
    )  # fmt: skip
    train.add_argument(
        "--materials", nargs="+", default=None, metavar="ID",
        help="material ids or formulas that name one material (default: all)",
    )  # fmt: skip
    train.add_argument(
        "--test-ids", nargs="+", default=None, metavar="ID",
        help="held-out material ids or formulas (default: --holdout-fraction of each label)",
    )  # fmt: skip
    train.add_argument("--mcd", action="store_true", help="MCD domain adaptation")
    train.add_argument(
        "--target", nargs="+", default=[], metavar="PATH[=LABEL]",
        help="MCD target patterns (file or image folder), optionally with their phase label",
    )  # fmt: skip
    train.add_argument(
        "--top-n", type=int, default=MCD.top_n, help="MCD target patterns kept per phase"
    )
    train.add_argument("--runs", type=int, default=1, help="MCD ensemble size (paper 30)")
    train.add_argument("--seed", type=int, default=0, help="seed of splits and sampling (0)")
    train.add_argument(
        "--pc-range",
        nargs=6,
        type=float,
        metavar=("XL", "XH", "YL", "YH", "ZL", "ZH"),
        help="train across detector geometries: Bruker pattern-centre ranges drawn per pattern "
        "(e.g. 0.4 0.6 0.2 0.5 0.5 1.8); default the paper's detector only",
    )
    train.add_argument(
        "--pc",
        nargs=3,
        type=float,
        metavar=("X", "Y", "Z"),
        help="Bruker pattern centre of the run's detector (default the paper's, PCz 1.73; "
        "lab detectors: about 0.5 0.45 0.65)",
    )
    train.add_argument(
        "--degrade",
        nargs="?",
        const="lab",
        metavar="SET",
        help="also train on shot noise, blur, contrast, gamma and binning (real cameras); SET: "
        f"{' or '.join(DEGRADATIONS)} (default lab; lab-dim reaches real binned patterns' noise; "
        "lab-falloff adds their weaker, noisier outer parts; lab-camera a grainy camera texture)",
    )
    train.add_argument(
        "--detector-shape",
        nargs=2,
        type=int,
        metavar=("H", "W"),
        help="rendered detector in px, cropped and resized to --image-size (default 240 240)",
    )
    train.set_defaults(func=train_handler)

    predict = subparsers.add_parser(
        "predict", help="label experimental patterns (CSV; phase map PNG for scans)"
    )
    predict.add_argument(
        "run", metavar="RUN", nargs="?", help="run id (`ebsdlake runs ls`); omit with --model"
    )
    predict.add_argument(
        "files", nargs="+", metavar="FILE",
        help="EBSD pattern files (any kikuchipy format), images, or folders of images",
    )  # fmt: skip
    predict.add_argument("--out", default="predictions", help="output folder")
    predict.add_argument(
        "--model", default=None, metavar="NAME",
        help="a model package (shipped name or folder, `ebsdlake model ls`) instead of RUN",
    )  # fmt: skip
    predict.add_argument(
        "--gate", default=None, metavar="NAME",
        help="a Laue-class model package (e.g. systems-lab): patterns it puts outside the "
        "model's classes come out uncertain",
    )  # fmt: skip
    predict.add_argument(
        "--pc",
        nargs=3,
        type=float,
        metavar=("X", "Y", "Z"),
        help="pattern centre of the recording (default: what the file carries; none: centre crop)",
    )
    predict.add_argument(
        "--pc-convention",
        default="bruker",
        choices=PC_CONVENTIONS,
        help="convention of --pc (bruker; tsl/edax; oxford; emsoft: xpc, ypc in px, L in um)",
    )
    predict.add_argument(
        "--detector-tilt", type=float, default=0.0, help="detector tilt with --pc, degrees"
    )
    predict.add_argument(
        "--sample-tilt", type=float, default=70.0, help="sample tilt with --pc, degrees"
    )
    predict.set_defaults(func=predict_handler)


def _run_id(args: argparse.Namespace, kind: str) -> str:
    """The given run id, or a time-stamped one."""
    if args.run_id:
        return args.run_id
    import time

    return f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def train_handler(args: argparse.Namespace) -> int:
    """``ebsdlake train``: the supervised protocol, or MCD with ``--mcd``, with progress bars
    and a closing table (``infra.app.train_progress``); Ctrl-C exits 130, the run resumable."""
    from infra.app.train_progress import train_showing_progress

    return train_showing_progress(lambda: (_train_mcd if args.mcd else _train_supervised)(args))


def _train_supervised(args: argparse.Namespace) -> list[Any]:
    """``ebsdlake train``: run the supervised protocol; returns the closing table."""
    from infra.app.train_progress import protocol_table
    from train.runs.kfold import plan_protocol, run_protocol
    from train.runs.run import open_lake

    config = SupervisedConfig(**_run_settings(args, mcd=False))
    config.validate()
    folds = args.folds if args.folds is not None else _config_value(args, "folds")
    folds = 5 if folds is None else int(folds)
    _at_least_one("--folds", folds)
    run_id = _run_id(args, "supervised")
    lake = open_lake(args.lake, args.storage_options)
    _resolve_materials(lake, args)
    plan_protocol(lake, config, run_id, folds, args.holdout_fraction, args.materials, args.test_ids)
    address = _start_ray(args)
    summary = run_protocol(
        args.lake, args.storage_options, config, run_id, folds=folds,
        holdout_fraction=args.holdout_fraction, material_ids=args.materials,
        test_ids=args.test_ids, ray_address=address,
    )  # fmt: skip
    return [protocol_table(summary)]


def _train_mcd(args: argparse.Namespace) -> list[Any]:
    """``ebsdlake train --mcd``: K MCD runs on the lake's materials and the target files."""
    from infra.app.train_progress import result_table
    from train.mcd import MCDConfig
    from train.patterns.experimental import TargetSpec
    from train.patterns.materials import check_classes, check_materials, trainable_materials
    from train.runs.kfold import material_labels
    from train.runs.mcd_ensemble import check_ensemble, ensemble_vote, train_mcd_ensemble
    from train.runs.run import open_lake
    from train.runs.training import target_set_for

    if not args.target:
        raise TrainingError("train --mcd: give the target patterns with --target PATH[=LABEL]")
    _at_least_one("--runs", args.runs)
    _at_least_one("--top-n", args.top_n)
    config = MCDConfig(**_run_settings(args, mcd=True))
    config.validate()
    lake = open_lake(args.lake, args.storage_options)
    _resolve_materials(lake, args)
    if args.materials:
        check_materials(lake, args.materials, config.variants, "--materials")
    sources = args.materials or trainable_materials(lake, config.variants)
    if not sources:
        raise TrainingError(
            f"{lake.url}: no complete master among variants {list(config.variants)}; "
            "run `ebsdlake simulate` first"
        )
    run_id = _run_id(args, "mcd")
    check_classes(run_id, config.label, material_labels(lake, sources, config.label))
    specs = [TargetSpec.parse(text) for text in args.target]
    missing = [spec.path for spec in specs if not Path(spec.path).exists()]
    if missing:
        raise TrainingError(f"--target {missing[0]}: no such file or folder")
    check_ensemble(lake, run_id, args.runs, config, sources, [spec.path for spec in specs])
    targets = target_set_for(specs, config)
    address = _start_ray(args)
    results = train_mcd_ensemble(
        args.lake, args.storage_options, sources, targets, config, run_id, args.runs, address
    )
    shown: list[Any] = [f"MCD runs: {' '.join(r.run_id for r in results)}"]
    if all(spec.label is not None for spec in specs):
        vote = ensemble_vote(args.lake, args.storage_options, [r.run_id for r in results])
        shown.append(result_table(f"train --mcd: ensemble vote of {len(results)} runs", vote))
    return shown
