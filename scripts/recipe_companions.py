"""Two companion runs of a built recipe, on the same lake and the same held-out split.

- ``true-label``: the recipe's training with the true space group as the label instead of the
  compositionally-disordered one, scored on the same held-out materials (the paper's relabeling
  effect at this scale).
- ``no-prototypes``: the recipe's training on its decorated crystals only, scoring every bundled
  prototype (real phases of the paper's Table 1) with a model whose training set left it out.

Run after ``ebsdlake --lake LAKE model build RECIPE`` (it reads that run's split)::

    .venv/bin/python scripts/recipe_companions.py cubic-lab --lake LAKE --out companions.json

Each run is resumable and reused when finished (same run ids, same settings). Prints a table and
writes a JSON of the accuracies with per-material 95 % intervals.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _interval(per_material: dict[str, float]) -> dict[str, float]:
    from train.runs.scores import mean_interval

    return mean_interval(list(per_material.values())) if per_material else {}


def _train_and_score(lake_url: str, config, run_id: str, train_ids, test_ids, patterns: int):
    from train.runs.evaluate import evaluate_run
    from train.runs.run import Run, open_lake
    from train.runs.training import train_supervised

    if Run(open_lake(lake_url, {}), run_id).status != "finished":
        train_supervised(lake_url, {}, list(train_ids), config, run_id, test_ids=list(test_ids))
    return evaluate_run(lake_url, {}, run_id, list(test_ids), patterns)


def companions(recipe_name: str, lake_url: str) -> dict:
    """Train (or reuse) both companion runs of ``recipe_name`` and score them."""
    from infra.app.recipes import recipe
    from infra.ray_runtime import ensure_ray
    from train.runs.run import PROTOCOL_FILE, Run, open_lake

    cooking = recipe(recipe_name)
    lake = open_lake(lake_url, {})
    built = Run(lake, f"model-{cooking.name}")
    if built.status != "finished" or not built.has(PROTOCOL_FILE):
        raise SystemExit(f"recipe_companions: build {cooking.name!r} first (model build)")
    split = built.get_json(PROTOCOL_FILE)
    train_ids, test_ids = split["train_ids"], split["test_ids"]
    config = cooking.training.refine(seed=cooking.seed)
    ensure_ray(None, None)
    results: dict = {"recipe": cooking.name, "lake": lake_url}

    true_label = _train_and_score(
        lake_url, config.refine(label="spacegroup"), f"companion-{cooking.name}-true-label",
        train_ids, test_ids, cooking.evaluation_patterns,
    )  # fmt: skip
    results["true_label"] = {
        **true_label.summary(),
        "material_interval": _interval(true_label.per_material),
    }
    prototypes = sorted(m for m in [*train_ids, *test_ids] if m.startswith("proto-"))
    decorated = [m for m in train_ids if not m.startswith("proto-")]
    left_out = _train_and_score(
        lake_url, config, f"companion-{cooking.name}-no-prototypes", decorated, prototypes,
        cooking.evaluation_patterns,
    )  # fmt: skip
    results["no_prototypes"] = {
        **left_out.summary(),
        "material_interval": _interval(left_out.per_material),
    }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", help="a recipe built into --lake (e.g. cubic-lab)")
    parser.add_argument("--lake", required=True, help="the lake the recipe was built into")
    parser.add_argument("--out", default="companions.json", help="JSON of the results")
    args = parser.parse_args(argv)
    results = companions(args.recipe, args.lake)
    Path(args.out).write_text(json.dumps(results, indent=2, sort_keys=True, default=str))
    for name in ("true_label", "no_prototypes"):
        block = results[name]
        ci = block["material_interval"]
        print(
            f"{name}: accuracy {block['accuracy']:.3f} (per-material 95% "
            f"{ci.get('low', float('nan')):.2f}-{ci.get('high', float('nan')):.2f}, "
            f"{ci.get('n', 0)} materials)"
        )
    for mid, value in sorted(results["no_prototypes"]["per_material"].items()):
        print(f"  {mid}: {value:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
