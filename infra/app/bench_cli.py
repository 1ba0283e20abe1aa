"""``ebsdlake bench science``: the paper's true-vs-disordered experiment on a lake.

Runs the supervised protocol once per label target on a shared held-out set
(``train.runs.label_comparison``) and writes ``results.md`` / ``results.csv``.
"""

from __future__ import annotations

import argparse

from infra.app.train_cli import SUPERVISED, _start_ray
from train.targets import LABEL_TARGETS


def register(subparsers: argparse._SubParsersAction) -> None:
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
    science.add_argument(
        "--holdout-fraction",
        type=float,
        default=0.2,
        help="share of each label's materials held out (0.2)",
    )
    science.add_argument("--epochs", type=int, default=10, help="passes over the data (10)")
    science.add_argument(
        "--model", dest="arch", default="resnet18", help="network: resnet18 (resnet10 for tests)"
    )
    science.add_argument("--arch", dest="arch", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    science.add_argument("--image-size", type=int, default=224, help="network input px (224)")
    science.add_argument(
        "--detector-size", type=int, default=240, help="projected side before the crop (240)"
    )
    science.add_argument("--batch-size", type=int, default=128, help="patterns per step (128)")
    science.add_argument("--lr", type=float, default=1e-3, help="SGD learning rate (1e-3)")
    science.add_argument("--lr-step-epochs", type=int, default=7, help="lr x0.9 every N (7)")
    science.add_argument(
        "--steps-per-epoch", type=int, default=None,
        help="steps per epoch (default: from --patterns-per-material)",
    )  # fmt: skip
    science.add_argument(
        "--patterns-per-material", type=int, default=100,
        help="projections per material and epoch (100)",
    )  # fmt: skip
    science.add_argument(
        "--variants", nargs="+", default=["default"], metavar="VARIANT",
        help="B-factor variants to train on (default)",
    )  # fmt: skip
    science.add_argument("--workers", type=int, default=1, help="Ray Train workers (1)")
    science.add_argument("--gpu", action="store_true", help="one GPU per worker")
    science.add_argument("--seed", type=int, default=0, help="seed of splits and sampling (0)")
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
