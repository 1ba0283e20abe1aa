"""The paper's supervised experiment at any scale on a lake: true vs disordered labels, k-fold.

For each label target (default: ``spacegroup`` and ``disordered_spacegroup``, Yan et al. 2025
Fig. 2-3) it runs ``train.protocol.run_protocol``: held-out materials, grouped k-fold
cross-validation (paper: 5 folds), the final model on all training materials for the CV's best
epoch count, tested on the held-out materials. It writes a results table (Markdown and CSV).

Example (paper settings, 4 GPUs)::

    .venv/bin/python scripts/science_protocol.py --lake s3://bucket/lake --workers 4 --gpu \\
        --out results/science

Small CPU run (tiny lake, few steps)::

    .venv/bin/python scripts/science_protocol.py --lake ./lake --arch resnet10 --image-size 48 \\
        --steps-per-epoch 20 --epochs 3 --folds 3 --out /tmp/science
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from train.protocol import holdout_split, material_labels, run_protocol, trainable_materials
from train.runs import open_lake
from train.supervised import SupervisedConfig
from train.training_errors import TrainingError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", required=True, help="lake URL")
    parser.add_argument("--storage-options", default="{}", help="JSON fsspec options")
    parser.add_argument("--labels", nargs="+", default=["spacegroup", "disordered_spacegroup"])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--holdout-fraction", type=float, default=0.2)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument(
        "--detector-size", type=int, default=240, help="projected side before the crop (240)"
    )
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr-step-epochs", type=int, default=7, help="lr x0.9 every N epochs")
    parser.add_argument("--steps-per-epoch", type=int, default=None)
    parser.add_argument("--patterns-per-material", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ray-address", default=None)
    parser.add_argument("--run-prefix", default="science")
    parser.add_argument("--out", required=True, help="folder for results.md / results.csv")
    return parser.parse_args(argv)


def results_table(rows: list[dict]) -> str:
    """Markdown table: label, CV accuracy (mean and 95 % interval), epochs, held-out accuracy."""
    lines = [
        "| label | CV accuracy (mean, 95% interval) | folds | epochs | held-out accuracy |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        cv = row.get("cv_accuracy")
        cv_text = f"{cv['mean']:.3f} ({cv['low']:.3f}-{cv['high']:.3f})" if cv else "-"
        held = row.get("test_accuracy")
        lines.append(
            f"| {row['label']} | {cv_text} | {len(row.get('folds', {}))} | "
            f"{row['final_epochs']} | {'-' if held is None else f'{held:.3f}'} |"
        )
    return "\n".join(lines) + "\n"


def shared_holdout(
    lake_url: str, options: dict, config: SupervisedConfig, labels: list[str], fraction: float
) -> list[str]:
    """One held-out set for every label (so their test accuracies compare the same materials):
    stratified on the tuple of all the labels, ``fraction`` of each combination."""
    lake = open_lake(lake_url, options, mode="r")
    ids = trainable_materials(lake, config.variants)
    per_label = [material_labels(lake, ids, label) for label in labels]
    combined = [tuple(values) for values in zip(*per_label, strict=True)]
    return holdout_split(ids, combined, fraction, config.seed)[1]


def main(argv: list[str] | None = None) -> int:
    """Run the protocol for each label and write the tables."""
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = SupervisedConfig(
        arch=args.arch, epochs=args.epochs, image_size=args.image_size,
        detector_shape=(args.detector_size, args.detector_size), lr_step_epochs=args.lr_step_epochs,
        batch_size=args.batch_size, lr=args.lr, steps_per_epoch=args.steps_per_epoch,
        patterns_per_material=args.patterns_per_material, num_workers=args.workers,
        use_gpu=args.gpu, seed=args.seed,
    )  # fmt: skip
    rows = []
    try:
        options = json.loads(args.storage_options)
        test_ids = shared_holdout(args.lake, options, base, args.labels, args.holdout_fraction)
        print(f"held out {len(test_ids)} materials for every label: {' '.join(test_ids)}")
        for label in args.labels:
            summary = run_protocol(
                args.lake, options, base.refine(label=label), f"{args.run_prefix}-{label}",
                folds=args.folds, test_ids=test_ids, ray_address=args.ray_address,
            )  # fmt: skip
            rows.append(summary)
            print(
                f"{label}: {json.dumps({k: summary.get(k) for k in ('cv_accuracy', 'test_accuracy')})}"
            )
    except (TrainingError, ValueError, RuntimeError) as exc:
        print(f"science protocol: {exc}", file=sys.stderr)
        return 2
    (out / "results.md").write_text(results_table(rows))
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "cv_mean", "cv_low", "cv_high", "epochs", "test_accuracy"])
        for row in rows:
            cv = row.get("cv_accuracy") or {}
            writer.writerow(
                [row["label"], cv.get("mean"), cv.get("low"), cv.get("high"),
                 row["final_epochs"], row.get("test_accuracy")]
            )  # fmt: skip
    print(results_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
