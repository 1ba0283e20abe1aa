"""``ebsdlake train | evaluate | predict | bench science``: the training side's subcommands.

``register(subparsers)`` is called by ``infra.cli``; handlers return an exit code and raise
``TrainingError`` (a ValueError) for user errors, which infra prints as one line.
``bench science`` runs the paper's true-vs-disordered experiment (``train.science``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from train.targets import DEFAULT_TARGET, LABEL_TARGETS


def _default(args: argparse.Namespace, key: str, fallback: Any) -> Any:
    """A ``[train]`` value from the effective config, else ``fallback``."""
    section = getattr(getattr(args, "cfg", None), "train", None)
    value = getattr(section, key, None) if section is not None else None
    if value is None and isinstance(section, dict):
        value = section.get(key)
    return fallback if value is None else value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train``, ``evaluate``, ``predict`` and ``bench`` to the ``ebsdlake`` parser."""
    train = subparsers.add_parser(
        "train",
        help="train a space-group classifier (supervised k-fold protocol or MCD) on Ray Train",
    )
    train.add_argument("--label", default=None, choices=sorted(LABEL_TARGETS))
    train.add_argument("--folds", type=int, default=None, help="CV folds (paper 5; 1: none)")
    train.add_argument("--epochs", type=int, default=None)
    train.add_argument("--workers", type=int, default=None, help="Ray Train workers")
    train.add_argument("--gpu", action="store_true", help="one GPU per worker")
    train.add_argument("--holdout-fraction", type=float, default=0.2)
    train.add_argument("--run-id", default=None)
    train.add_argument("--model", default=None, help="resnet18 (supervised), resnet50 (MCD)")
    train.add_argument("--weights", default=None, help="local ImageNet state dict (.pth)")
    train.add_argument("--batch-size", type=int, default=None)
    train.add_argument("--image-size", type=int, default=None)
    train.add_argument("--lr", type=float, default=None)
    train.add_argument("--steps-per-epoch", type=int, default=None)
    train.add_argument("--patterns-per-material", type=int, default=100)
    train.add_argument("--variants", nargs="+", default=["default"])
    train.add_argument("--materials", nargs="+", default=None, help="material ids (default all)")
    train.add_argument("--test-ids", nargs="+", default=None, help="held-out material ids")
    train.add_argument("--mcd", action="store_true", help="MCD domain adaptation")
    train.add_argument("--target", nargs="+", default=[], metavar="PATH[=LABEL]")
    train.add_argument("--top-n", type=int, default=100, help="MCD target patterns per phase")
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
    from infra.ray_runtime import ensure_ray
    from train.science import results_table, run_science
    from train.supervised import SupervisedConfig

    address = getattr(getattr(args.cfg, "ray", None), "address", None) or None
    ensure_ray(address, getattr(getattr(args.cfg, "ray", None), "num_cpus", None) or None)
    config = SupervisedConfig(
        arch=args.arch, epochs=args.epochs, image_size=args.image_size,
        detector_shape=(args.detector_size, args.detector_size), batch_size=args.batch_size,
        lr=args.lr, lr_step_epochs=args.lr_step_epochs, steps_per_epoch=args.steps_per_epoch,
        patterns_per_material=args.patterns_per_material, variants=tuple(args.variants),
        num_workers=args.workers, use_gpu=args.gpu, seed=args.seed,
    )  # fmt: skip
    config.validate()
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
    from infra.ray_runtime import ensure_ray

    address = getattr(getattr(args.cfg, "ray", None), "address", None) or None
    ensure_ray(address, getattr(getattr(args.cfg, "ray", None), "num_cpus", None) or None)
    common = {
        "label": args.label or DEFAULT_TARGET,
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "lr": args.lr,
        "epochs": args.epochs,
        "steps_per_epoch": args.steps_per_epoch,
        "patterns_per_material": args.patterns_per_material,
        "num_workers": args.workers or int(_default(args, "num_workers", 1)),
        "use_gpu": bool(args.gpu or _default(args, "use_gpu", False)),
        "variants": tuple(args.variants),
        "weights_path": args.weights,
        "seed": args.seed,
    }
    if args.mcd:
        return _train_mcd(args, {k: v for k, v in common.items() if v is not None}, address)
    from train.protocol import run_protocol
    from train.supervised import SupervisedConfig

    settings = {k: v for k, v in common.items() if v is not None}
    settings.setdefault("epochs", int(_default(args, "epochs", 10)))
    settings["arch"] = args.model or str(_default(args, "model", "resnet18"))
    config = SupervisedConfig(**settings)
    summary = run_protocol(
        args.lake, args.storage_options, config, _run_id(args, "supervised"),
        folds=args.folds if args.folds is not None else int(_default(args, "folds", 5)),
        holdout_fraction=args.holdout_fraction, material_ids=args.materials,
        test_ids=args.test_ids, ray_address=address,
    )  # fmt: skip
    _print_summary(summary)
    return 0


def _train_mcd(args: argparse.Namespace, settings: dict, address: str | None) -> int:
    """``ebsdlake train --mcd``: K MCD runs on the lake's materials and the target files."""
    from train.evaluate import ensemble_vote
    from train.experimental import TargetSpec
    from train.mcd import MCDConfig, train_mcd_ensemble
    from train.protocol import trainable_materials
    from train.runs import open_lake
    from train.training_errors import TrainingError

    if not args.target:
        raise TrainingError("train --mcd: give the target patterns with --target PATH[=LABEL]")
    config = MCDConfig(arch=args.model or "resnet50", top_n=args.top_n, **settings)
    lake = open_lake(args.lake, args.storage_options)
    sources = args.materials or trainable_materials(lake, config.variants)
    specs = [TargetSpec.parse(text) for text in args.target]
    run_id = _run_id(args, "mcd")
    results = train_mcd_ensemble(
        args.lake, args.storage_options, sources, specs, config, run_id, args.runs, address
    )
    print(f"MCD runs: {' '.join(r.run_id for r in results)}")
    if all(spec.label is not None for spec in specs):
        vote = ensemble_vote(args.lake, args.storage_options, [r.run_id for r in results])
        _print_summary(vote)
    return 0


def evaluate_handler(args: argparse.Namespace) -> int:
    """``ebsdlake evaluate RUN...``: evaluate runs; mean and 95 % interval over several."""
    from train.evaluate import ensemble_vote, evaluate_run, mean_interval

    if args.ensemble:
        _print_summary(ensemble_vote(args.lake, args.storage_options, args.runs))
        return 0
    accuracies = {}
    for run in args.runs:
        evaluation = evaluate_run(
            args.lake, args.storage_options, run, args.test_ids, args.patterns_per_material
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
    """``ebsdlake predict RUN FILE...``: CSV (and a phase map for scans) per file."""
    from collections import Counter

    from train.predict import predict_files, write_prediction

    for prediction in predict_files(args.lake, args.storage_options, args.run, args.files):
        written = write_prediction(prediction, args.out)
        label, count = Counter(prediction.predicted).most_common(1)[0]
        total = len(prediction.predicted)
        print(
            f"{prediction.source}: {total} patterns, most predicted {label} ({count}/{total}); "
            f"wrote {', '.join(str(p) for p in written)}"
        )
    return 0


def _print_summary(summary: dict) -> None:
    """Print a result dict as indented JSON (without the long per-epoch history)."""
    shown = {k: v for k, v in summary.items() if k != "final_history"}
    json.dump(shown, sys.stdout, indent=2, default=str)
    print()
