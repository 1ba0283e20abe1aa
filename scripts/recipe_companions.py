"""Two companion runs of a built recipe, on the same lake and the same held-out split.

- ``true-label``: the recipe's training with the true label (space group, Laue class...)
  instead of the compositionally-disordered one, scored on the same held-out materials (the
  paper's relabeling effect at this scale), and on the space groups held out whole when the
  recipe holds some out.
- ``no-prototypes``: the recipe's training on its generated crystals only, scoring every bundled
  real phase (prototypes of the paper's Table 1, bundled non-cubic phases) with a model whose
  training set left it out.

Run after ``ebsdlake --lake LAKE model build RECIPE`` (it reads that run's split)::

    .venv/bin/python scripts/recipe_companions.py cubic-lab --lake LAKE --out companions.json
    .venv/bin/python scripts/recipe_companions.py systems-lab --lake LAKE --only true-label

Each run is resumable and reused when finished (same run ids, same settings). Prints a table and
writes a JSON of the accuracies with per-material 95 % intervals.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

COMPANIONS = ("true-label", "no-prototypes")


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


def _unseen_ids(lake, cooking) -> list[str]:
    """Materials of the space groups the recipe's build held out whole (none: empty)."""
    from train.patterns.materials import available_variants, material_labels
    from train.runs.unseen_groups import choose_unseen_groups, split_by_groups

    groups = choose_unseen_groups(
        cooking.unseen_group_fraction, cooking.seed, cooking.synthetic_groups
    )
    if not groups:
        return []
    variants = cooking.training.variants
    ids = [m for m in lake.structure_ids() if available_variants(lake, m, variants)]
    return split_by_groups(ids, material_labels(lake, ids, "spacegroup_number"), groups)[1]


def _real_phase(lake, material_id: str) -> bool:
    """A bundled real phase (prototype or bundled CIF), not a generated crystal."""
    return lake.structure(material_id).get("source") in ("prototype", "cif")


def _scored(evaluation) -> dict:
    return {**evaluation.summary(), "material_interval": _interval(evaluation.per_material)}


def companions(recipe_name: str, lake_url: str, only: tuple[str, ...] = COMPANIONS) -> dict:
    """Train (or reuse) the companion runs ``only`` of ``recipe_name`` and score them."""
    from infra.app.recipes import recipe
    from infra.ray_runtime import ensure_ray
    from train.runs.evaluate import evaluate_run
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

    true_label_name = config.label.removeprefix("disordered_")
    unseen = _unseen_ids(lake, cooking)
    if "true-label" in only:
        run_id = f"companion-{cooking.name}-true-label"
        true_config = config.refine(label=true_label_name)
        results["true_label"] = _scored(
            _train_and_score(
                lake_url, true_config, run_id, train_ids, test_ids, cooking.evaluation_patterns
            )
        )
        if unseen:
            results["true_label_unseen_groups"] = _scored(
                evaluate_run(lake_url, {}, run_id, unseen, cooking.evaluation_patterns)
            )
    if "no-prototypes" in only:
        real = sorted(m for m in [*train_ids, *test_ids] if _real_phase(lake, m))
        generated = [m for m in train_ids if m not in set(real)]
        results["no_prototypes"] = _scored(
            _train_and_score(
                lake_url,
                config,
                f"companion-{cooking.name}-no-prototypes",
                generated,
                real,
                cooking.evaluation_patterns,
            )  # fmt: skip
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", help="a recipe built into --lake (e.g. cubic-lab)")
    parser.add_argument("--lake", required=True, help="the lake the recipe was built into")
    parser.add_argument("--out", default="companions.json", help="JSON of the results")
    parser.add_argument(
        "--only", choices=COMPANIONS, nargs="+", default=list(COMPANIONS), help="runs to make"
    )
    args = parser.parse_args(argv)
    results = companions(args.recipe, args.lake, tuple(args.only))
    Path(args.out).write_text(json.dumps(results, indent=2, sort_keys=True, default=str))
    for name in ("true_label", "true_label_unseen_groups", "no_prototypes"):
        if name not in results:
            continue
        block = results[name]
        ci = block["material_interval"]
        print(
            f"{name}: accuracy {block['accuracy']:.3f} (per-material 95% "
            f"{ci.get('low', float('nan')):.2f}-{ci.get('high', float('nan')):.2f}, "
            f"{ci.get('n', 0)} materials)"
        )
    for mid, value in sorted(results.get("no_prototypes", {}).get("per_material", {}).items()):
        print(f"  {mid}: {value:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
