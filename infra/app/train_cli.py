"""``ebsdlake train | evaluate | predict | bench science``: the training side's subcommands.

``register(subparsers)`` is called by ``infra.app.cli``; handlers return an exit code and raise
``TrainingError`` (a ValueError) for user errors, which infra prints as one line.
``bench science`` runs the paper's true-vs-disordered experiment (``train.runs.label_comparison``).

``train`` takes each setting from its flag, else the ``[train]`` key of the configuration, else
the built-in (paper) default, and checks everything it can (settings, lake, materials, held-out
ids, existing runs, target files) before it starts Ray.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from train.config_section import PAPER_HOLDOUT_FRACTION
from train.mcd import MCDConfig
from train.supervised import SupervisedConfig
from train.targets import LABEL_TARGETS

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


def _run_settings(args: argparse.Namespace, mcd: bool) -> dict[str, Any]:
    """Training settings: the flag, else the ``[train]`` key, else left to the config class's
    built-in default (omitted). MCD takes only ``[train]`` keys set explicitly, and has no
    SGD keys (``momentum``, ``lr_step_epochs``, ``lr_gamma``)."""

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
        "steps_per_epoch": args.steps_per_epoch,
        "patterns_per_material": args.patterns_per_material,
        "variants": tuple(args.variants),
        "weights_path": args.weights,
        "seed": args.seed,
    }
    if mcd:
        settings["top_n"] = args.top_n
    else:
        for key in ("momentum", "lr_step_epochs", "lr_gamma"):
            settings[key] = _config_value(args, key)
    return {key: value for key, value in settings.items() if value is not None}


def _at_least_one(option: str, value: int | None) -> None:
    """Raise :class:`TrainingError` naming ``option`` when ``value`` is below 1."""
    from train.errors import TrainingError

    if value is not None and value < 1:
        raise TrainingError(f"{option} {value}: must be >= 1")


def _start_ray(args: argparse.Namespace) -> str | None:
    """Start or join Ray as the ``[ray]`` config says; return the address to pass on."""
    from infra.ray_runtime import ensure_ray

    address = getattr(getattr(args.cfg, "ray", None), "address", None) or None
    ensure_ray(address, getattr(getattr(args.cfg, "ray", None), "num_cpus", None) or None)
    return address


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train``, ``evaluate``, ``predict`` and ``bench`` to the ``ebsdlake`` parser."""
    train = subparsers.add_parser(
        "train",
        help="train a space-group classifier (supervised k-fold protocol or MCD) on Ray Train",
    )
    train.add_argument(
        "--label", default=None, choices=sorted(LABEL_TARGETS), help="([train] label)"
    )
    train.add_argument(
        "--folds", type=int, default=None, help="CV folds ([train] folds, paper 5; 1: none)"
    )
    train.add_argument("--epochs", type=int, default=None, help="([train] epochs; MCD 20)")
    train.add_argument(
        "--workers", type=int, default=None, help="Ray Train workers ([train] num_workers)"
    )
    train.add_argument("--gpu", action="store_true", help="one GPU per worker")
    train.add_argument(
        "--holdout-fraction",
        type=float,
        default=PAPER_HOLDOUT_FRACTION,
        help=f"share of each label's materials held out (default {PAPER_HOLDOUT_FRACTION})",
    )
    train.add_argument("--run-id", default=None)
    train.add_argument(
        "--model", default=None, help="([train] model) resnet18 (supervised), resnet50 (MCD)"
    )
    train.add_argument("--weights", default=None, help="local ImageNet state dict (.pth)")
    train.add_argument("--batch-size", type=int, default=None, help="([train] batch_size)")
    train.add_argument("--image-size", type=int, default=None, help="([train] image_size)")
    train.add_argument("--lr", type=float, default=None, help="([train] lr; MCD 2e-4)")
    train.add_argument("--steps-per-epoch", type=int, default=None)
    train.add_argument(
        "--patterns-per-material",
        type=int,
        default=SUPERVISED.patterns_per_material,
        help="projections per training material and epoch (sets the epoch length)",
    )
    train.add_argument("--variants", nargs="+", default=["default"])
    train.add_argument("--materials", nargs="+", default=None, help="material ids (default all)")
    train.add_argument("--test-ids", nargs="+", default=None, help="held-out material ids")
    train.add_argument("--mcd", action="store_true", help="MCD domain adaptation")
    train.add_argument("--target", nargs="+", default=[], metavar="PATH[=LABEL]")
    train.add_argument(
        "--top-n", type=int, default=MCD.top_n, help="MCD target patterns kept per phase"
    )
    train.add_argument("--runs", type=int, default=1, help="MCD ensemble size (paper 30)")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(func=train_handler)

    evaluate = subparsers.add_parser(
        "evaluate", help="accuracy, per-class/per-material accuracy and confusion matrix of runs"
    )
    evaluate.add_argument("runs", nargs="+", metavar="RUN")
    evaluate.add_argument("--test-ids", nargs="+", default=None)
    evaluate.add_argument("--patterns-per-material", type=int, default=100)
    evaluate.add_argument("--ensemble", action="store_true", help="majority vote of MCD runs")
    evaluate.set_defaults(func=evaluate_handler)

    predict = subparsers.add_parser(
        "predict", help="label experimental patterns (CSV; phase map PNG for scans)"
    )
    predict.add_argument("run", metavar="RUN")
    predict.add_argument("files", nargs="+", metavar="FILE")
    predict.add_argument("--out", default="predictions", help="output folder")
    predict.set_defaults(func=predict_handler)

    _register_bench(subparsers)


def _register_bench(subparsers: argparse._SubParsersAction) -> None:
    """``ebsdlake bench science``: the paper's experiment on a lake, written as a table."""
    bench = subparsers.add_parser("bench", help="the paper's experiment at any scale")
    kinds = bench.add_subparsers(dest="bench", metavar="BENCH", required=True)
    science = kinds.add_parser(
        "science",
        help="true vs disordered labels: k-fold CV + held-out test per label, results table",
        description=(
            "Run the supervised protocol (grouped k-fold CV, final model, held-out materials "
            "shared by every label) once per label target and write results.md / results.csv. "
            "Defaults are the paper's (ResNet18, 224 px, batch 128, SGD lr 1e-3, 5 folds)."
        ),
    )
    science.add_argument(
        "--labels", nargs="+", default=["spacegroup", "disordered_spacegroup"],
        choices=sorted(LABEL_TARGETS), metavar="LABEL",
        help="label targets (spacegroup disordered_spacegroup)",
    )  # fmt: skip
    science.add_argument("--folds", type=int, default=5, help="CV folds (5)")
    science.add_argument("--holdout-fraction", type=float, default=0.2, help="(0.2)")
    science.add_argument("--epochs", type=int, default=10, help="(10)")
    science.add_argument("--arch", default="resnet18", help="resnet18 (or resnet10 for tests)")
    science.add_argument("--image-size", type=int, default=224, help="network input px (224)")
    science.add_argument(
        "--detector-size", type=int, default=240, help="projected side before the crop (240)"
    )
    science.add_argument("--batch-size", type=int, default=128, help="(128)")
    science.add_argument("--lr", type=float, default=1e-3, help="SGD learning rate (1e-3)")
    science.add_argument("--lr-step-epochs", type=int, default=7, help="lr x0.9 every N (7)")
    science.add_argument("--steps-per-epoch", type=int, default=None)
    science.add_argument("--patterns-per-material", type=int, default=100, help="(100)")
    science.add_argument("--variants", nargs="+", default=["default"])
    science.add_argument("--workers", type=int, default=1, help="Ray Train workers (1)")
    science.add_argument("--gpu", action="store_true", help="one GPU per worker")
    science.add_argument("--seed", type=int, default=0)
    science.add_argument("--run-prefix", default="science", help="run ids <prefix>-<label>")
    science.add_argument("--out", required=True, help="folder for results.md and results.csv")
    science.set_defaults(func=science_handler)


def science_handler(args: argparse.Namespace) -> int:
    """``ebsdlake bench science``: one protocol per label on a shared held-out set."""
    from train.runs.label_comparison import results_table, run_science

    config = SUPERVISED.refine(
        arch=args.arch, epochs=args.epochs, image_size=args.image_size,
        detector_shape=(args.detector_size, args.detector_size), batch_size=args.batch_size,
        lr=args.lr, lr_step_epochs=args.lr_step_epochs, steps_per_epoch=args.steps_per_epoch,
        patterns_per_material=args.patterns_per_material, variants=tuple(args.variants),
        num_workers=args.workers, use_gpu=args.gpu, seed=args.seed,
    )  # fmt: skip
    config.validate()
    address = _start_ray(args)
    rows = run_science(
        args.lake, args.storage_options, config, args.labels, args.out, folds=args.folds,
        holdout_fraction=args.holdout_fraction, run_prefix=args.run_prefix, ray_address=address,
    )  # fmt: skip
    print(results_table(rows), end="")
    print(f"wrote {args.out}/results.md and results.csv")
    return 0


def _run_id(args: argparse.Namespace, kind: str) -> str:
    """The given run id, or a time-stamped one."""
    if args.run_id:
        return args.run_id
    import time

    return f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def train_handler(args: argparse.Namespace) -> int:
    """``ebsdlake train``: run the supervised protocol, or MCD with ``--mcd``."""
    from train.runs.kfold import plan_protocol, run_protocol
    from train.runs.run import open_lake

    if args.mcd:
        return _train_mcd(args)
    config = SupervisedConfig(**_run_settings(args, mcd=False))
    config.validate()
    folds = args.folds if args.folds is not None else _config_value(args, "folds")
    folds = 5 if folds is None else int(folds)
    _at_least_one("--folds", folds)
    run_id = _run_id(args, "supervised")
    lake = open_lake(args.lake, args.storage_options)
    plan_protocol(lake, config, run_id, folds, args.holdout_fraction, args.materials, args.test_ids)
    address = _start_ray(args)
    summary = run_protocol(
        args.lake, args.storage_options, config, run_id, folds=folds,
        holdout_fraction=args.holdout_fraction, material_ids=args.materials,
        test_ids=args.test_ids, ray_address=address,
    )  # fmt: skip
    _print_summary(summary)
    return 0


def _train_mcd(args: argparse.Namespace) -> int:
    """``ebsdlake train --mcd``: K MCD runs on the lake's materials and the target files."""
    from train.errors import TrainingError
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
    print(f"MCD runs: {' '.join(r.run_id for r in results)}")
    if all(spec.label is not None for spec in specs):
        vote = ensemble_vote(args.lake, args.storage_options, [r.run_id for r in results])
        _print_summary(vote)
    return 0


def evaluate_handler(args: argparse.Namespace) -> int:
    """``ebsdlake evaluate RUN...``: evaluate runs; mean and 95 % interval over several."""
    from train.runs.evaluate import evaluate_run
    from train.runs.mcd_ensemble import ensemble_vote
    from train.runs.scores import mean_interval

    _at_least_one("--patterns-per-material", args.patterns_per_material)
    if args.ensemble:
        _print_summary(ensemble_vote(args.lake, args.storage_options, args.runs))
        return 0
    accuracies = {}
    for run in args.runs:
        evaluation = evaluate_run(
            args.lake, args.storage_options, run, args.test_ids, args.patterns_per_material
        )
        if evaluation.seen_in_training:
            print(
                f"ebsdlake evaluate: warning: run {run!r} was trained on "
                f"{', '.join(evaluation.seen_in_training)}; its score is not a held-out score",
                file=sys.stderr,
            )
        accuracies[run] = evaluation.accuracy
        print(f"{run}: accuracy {evaluation.accuracy:.4f} on {evaluation.n_patterns} patterns")
        for label, value in evaluation.per_class.items():
            print(f"  class {label}: {value:.4f}")
        for material, value in evaluation.per_material.items():
            print(f"  material {material}: {value:.4f}")
    if len(accuracies) > 1:
        summary = mean_interval(list(accuracies.values()))
        print(
            f"mean accuracy {summary['mean']:.4f} "
            f"(95% interval {summary['low']:.4f}-{summary['high']:.4f}, n={summary['n']})"
        )
    return 0


def predict_handler(args: argparse.Namespace) -> int:
    """``ebsdlake predict RUN FILE...``: CSV (and a phase map for scans) per file.

    Each file's results are written as soon as it is predicted; a file that cannot be read is
    reported (one line at the end, exit code 2) without losing the others' results.
    """
    from collections import Counter

    from train.errors import TrainingError
    from train.runs.predict import Prediction, check_inputs, iter_predictions, write_prediction

    check_inputs(args.files, args.out)
    failures = []
    for prediction in iter_predictions(args.lake, args.storage_options, args.run, args.files):
        if not isinstance(prediction, Prediction):
            failures.append(str(prediction))
            continue
        written = write_prediction(prediction, args.out)
        label, count = Counter(prediction.predicted).most_common(1)[0]
        total = len(prediction.predicted)
        print(
            f"{prediction.source}: {total} patterns, most predicted {label} ({count}/{total}); "
            f"wrote {', '.join(str(p) for p in written)}"
        )
    if failures:
        done = len(args.files) - len(failures)
        raise TrainingError(
            f"{len(failures)} of {len(args.files)} inputs not predicted"
            f"{f' (the other {done} are written)' if done else ''}: {'; '.join(failures)}"
        )
    return 0


def _print_summary(summary: dict) -> None:
    """Print a result dict as indented JSON (without the long per-epoch history)."""
    shown = {k: v for k, v in summary.items() if k != "final_history"}
    json.dump(shown, sys.stdout, indent=2, default=str)
    print()
