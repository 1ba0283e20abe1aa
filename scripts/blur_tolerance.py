"""Does a model still call its held-out materials when the patterns are blurred?

Real detectors blur (phosphor spread, optics, binning); a recipe trains on Gaussian blur up to
1 px at its detector. This script scores a model on its held-out materials (never trained on)
rendered as its own evaluation renders them (same detector, orientations and pre-processing),
then blurred by a Gaussian of each given sigma in network-input pixels and standardised again::

    .venv/bin/python scripts/blur_tolerance.py --model cubic-lab --lake LAKE \\
        --sigma 0 0.5 1 1.5 2 --out blur.json

LAKE holds the model's held-out masters at its recipe's settings (a build's lake). Writes the
JSON (accuracy, 95 % interval over materials, per class, per sigma); the sigma-0 row is the
card's evaluation (to the digit, with the card's patterns per material).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def blurred_input(patterns: Any, sigma_px: float) -> Any:
    """(B, 1, S, S) network inputs blurred by ``sigma_px`` input pixels, each standardised again
    to zero mean and unit deviation as the network saw them; unchanged at 0."""
    from train.patterns.blur import gaussian_blur_each

    if sigma_px == 0:
        return patterns
    sigmas = patterns.new_full((patterns.shape[0],), float(sigma_px))
    smooth = gaussian_blur_each(patterns[:, 0], sigmas)[:, None]
    mean = smooth.mean(dim=(-2, -1), keepdim=True)
    return (smooth - mean) / smooth.std(dim=(-2, -1), keepdim=True)


def score_blurred(
    loaded: Any, lake_url: str, ids: list[str], per_material: int, sigmas: list[float]
) -> dict[str, dict]:
    """Accuracy, interval over materials and per class of ``loaded`` on ``per_material``
    evaluation patterns of each material in ``ids``, per blur sigma (input pixels)."""
    from train.run_config import EVALUATION_SEED_OFFSET
    from train.runs.held_out import held_out_batches
    from train.runs.scores import mean_interval, score

    batches = list(
        held_out_batches(loaded, lake_url, {}, ids, per_material, EVALUATION_SEED_OFFSET)
    )
    results = {}
    for sigma in sigmas:
        true_values, predicted, groups = [], [], []
        for patterns, values, mids in batches:
            indices = loaded.probabilities(blurred_input(patterns, sigma)).argmax(1).tolist()
            predicted += [loaded.classes[i] for i in indices]
            true_values += values
            groups += mids
        found = score("materials", loaded.classes, true_values, predicted, groups)
        results[f"{sigma:g}"] = {
            "accuracy": found.accuracy,
            "interval_over_materials": mean_interval(list(found.per_material.values())),
            "per_class": {str(k): v for k, v in found.per_class.items()},
            "n_patterns": found.n_patterns,
        }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cubic-lab", help="package folder or shipped name")
    parser.add_argument("--lake", required=True, help="lake with the held-out masters")
    parser.add_argument("--sigma", type=float, nargs="+", default=[0, 0.5, 1, 1.5, 2])
    parser.add_argument("--patterns-per-material", type=int, default=100)
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    if min(args.sigma) < 0:
        print(f"blur_tolerance: --sigma {min(args.sigma):g}: a blur is >= 0 px", file=sys.stderr)
        return 2

    from train.errors import TrainingError
    from train.runs.inference import load_model
    from train.shipped import model_folder

    try:
        loaded = load_model(args.model)
    except TrainingError as exc:
        print(f"blur_tolerance: {exc}", file=sys.stderr)
        return 2
    card = json.loads((model_folder(args.model) / "card.json").read_text())
    ids = list(card["protocol"]["test_ids"])
    results = score_blurred(loaded, args.lake, ids, args.patterns_per_material, args.sigma)
    for sigma, found in results.items():
        low, high = (
            found["interval_over_materials"]["low"],
            found["interval_over_materials"]["high"],
        )
        classes = ", ".join(f"{k} {v:.3f}" for k, v in found["per_class"].items())
        print(f"blur {sigma} px: {found['accuracy']:.3f} ({low:.3f}-{high:.3f}); {classes}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {"model": str(args.model), "materials": ids, "by_sigma_px": results,
              "patterns_per_material": args.patterns_per_material}  # fmt: skip
    args.out.write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
