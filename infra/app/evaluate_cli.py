"""``ebsdlake evaluate RUN...``: score runs on held-out materials and say what was scored.

``register(subparsers)`` is called by ``infra.app.cli``. Each run's evaluation is stored in its
folder (``train.runs.evaluate``): the run's own settings as ``evaluation.json`` and its tables,
other settings beside them, named by the settings (``evaluation-ppm4.json``...), so the run's
own evaluation never changes behind its report. The command prints the accuracy, the patterns
scored per class and per material, and where the files went.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from infra.app.train_cli import _at_least_one, _resolve_materials

if TYPE_CHECKING:  # the CLI imports the training side only when a command runs
    from train.runs.evaluate import StoredEvaluation


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``evaluate`` to the ``ebsdlake`` parser."""
    evaluate = subparsers.add_parser(
        "evaluate", help="accuracy, per-class/per-material accuracy and confusion matrix of runs"
    )
    evaluate.add_argument("runs", nargs="+", metavar="RUN", help="run ids (`ebsdlake runs ls`)")
    evaluate.add_argument(
        "--test-ids", nargs="+", default=None, metavar="ID",
        help="materials to test on (default: the run's held-out materials)",
    )  # fmt: skip
    evaluate.add_argument(
        "--patterns-per-material", type=int, default=None, metavar="N",
        help="projections per test material (default: the number of the run's own evaluation, "
        "else 100); other numbers are stored beside the run's own evaluation",
    )  # fmt: skip
    evaluate.add_argument("--ensemble", action="store_true", help="majority vote of MCD runs")
    evaluate.set_defaults(func=evaluate_handler)


def evaluate_handler(args: argparse.Namespace) -> int:
    """``ebsdlake evaluate RUN...``: evaluate runs; mean and 95 % interval over several."""
    from train.runs.evaluate import evaluate_and_store
    from train.runs.mcd_ensemble import ensemble_vote
    from train.runs.scores import mean_interval

    _at_least_one("--patterns-per-material", args.patterns_per_material)
    if args.test_ids:
        from train.runs.run import open_lake

        _resolve_materials(open_lake(args.lake, args.storage_options), args)
    if args.ensemble:
        json.dump(ensemble_vote(args.lake, args.storage_options, args.runs), sys.stdout, indent=2)
        print()
        return 0
    accuracies = {}
    for run in args.runs:
        stored = evaluate_and_store(
            args.lake, args.storage_options, run, args.test_ids, args.patterns_per_material
        )
        evaluation = stored.evaluation
        if evaluation.seen_in_training:
            print(
                f"ebsdlake evaluate: warning: run {run!r} was trained on "
                f"{', '.join(evaluation.seen_in_training)}; its score is not a held-out score",
                file=sys.stderr,
            )
        accuracies[run] = evaluation.accuracy
        for line in report_lines(stored):
            print(line)
    if len(accuracies) > 1:
        summary = mean_interval(list(accuracies.values()))
        print(
            f"mean accuracy {summary['mean']:.4f} "
            f"(95% interval {summary['low']:.4f}-{summary['high']:.4f}, n={summary['n']})"
        )
    return 0


def report_lines(stored: StoredEvaluation) -> list[str]:
    """What ``evaluate`` prints for one run: accuracy with counts, each class and material with
    its accuracy and pattern count, and where the files were stored."""
    evaluation, settings = stored.evaluation, stored.settings
    if settings.patterns_per_material is None:
        scored = f"{evaluation.n_patterns} labelled target patterns"
    else:
        scored = (
            f"{evaluation.n_patterns} patterns ({settings.patterns_per_material} per material, "
            f"{len(evaluation.material_counts)} materials, {len(evaluation.class_counts)} classes)"
        )
    lines = [f"{evaluation.run_id}: accuracy {evaluation.accuracy:.4f} on {scored}"]
    for label, value in evaluation.per_class.items():
        count = evaluation.class_counts.get(label, 0)
        lines.append(f"  class {label}: {value:.4f} ({count} patterns)")
    for material, value in evaluation.per_material.items():
        count = evaluation.material_counts.get(material, 0)
        lines.append(f"  material {material}: {value:.4f} ({count} patterns)")
    if stored.own:
        where = "stored as the run's own evaluation"
    else:
        own = stored.own_settings
        what = [f"{len(own.test_ids)} held-out materials"] if own.test_ids else ["target patterns"]
        if own.patterns_per_material is not None:
            what.append(f"{own.patterns_per_material} patterns per material")
        where = f"stored beside the run's own evaluation ({', '.join(what)})"
    lines.append(f"  {where} in {stored.folder}: {', '.join(stored.files)}")
    return lines
