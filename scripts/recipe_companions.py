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
writes a JSON of the accuracies with per-material 95 % intervals; ``--card PACKAGE`` also adds
them to that model package's card (a "Companions" section, and ``companions`` in card.json).
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


def companions(
    recipe_name: str,
    lake_url: str,
    only: tuple[str, ...] = COMPANIONS,
    built_run: str | None = None,
) -> dict:
    """Train (or reuse) the companion runs ``only`` of ``recipe_name`` and score them, on the
    split of the recipe's build (run ``built_run``, default ``model-RECIPE``; a promoted
    variant's run, ``scripts/promote_variant.py``, is another)."""
    from infra.app.recipes import recipe
    from infra.ray_runtime import ensure_ray
    from train.runs.evaluate import evaluate_run
    from train.runs.run import PROTOCOL_FILE, Run, open_lake

    cooking = recipe(recipe_name)
    lake = open_lake(lake_url, {})
    built = Run(lake, built_run or f"model-{cooking.name}")
    if built.status != "finished" or not built.has(PROTOCOL_FILE):
        raise SystemExit(
            f"recipe_companions: no finished run {built.run_id!r}: build {cooking.name!r} first"
        )
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


#: Result keys in the order the card shows them, with how each row reads.
_ROWS = {
    "true_label": "true label, held-out materials",
    "true_label_unseen_groups": "true label, space groups held out whole",
    "no_prototypes": "without the prototypes, every bundled real phase",
}


def card_lines(results: dict, command: str, label: str = "spacegroup") -> list[str]:
    """The card's "Companions" section: accuracy, interval and per class of each companion,
    and per material for the real phases the no-prototypes run scores; ``label`` names the
    classes (space-group numbers read as Hermann-Mauguin symbols)."""
    from infra.app.card_sections import markdown_table
    from train.targets import class_symbol

    rows = []
    for key, title in _ROWS.items():
        if key not in results:
            continue
        block, ci = results[key], results[key]["material_interval"]
        per_class = ", ".join(
            f"{class_symbol(label, c)} {v:.2f}" for c, v in block["per_class"].items()
        )
        interval = f"{ci.get('low', float('nan')):.3f}-{ci.get('high', float('nan')):.3f}"
        rows.append([title, ci.get("n", 0), f"{block['accuracy']:.3f}", interval, per_class])
    header = ["companion", "materials", "accuracy", "95 % interval", "per class"]
    lines = ["", "## Companions (same recipe and split)", "", f"Command: `{command}`", ""]
    lines += markdown_table(header, rows)
    real = results.get("no_prototypes", {}).get("per_material", {})
    if real:
        shown = ", ".join(f"{m} {v:.2f}" for m, v in sorted(real.items()))
        lines += ["", f"Real phases scored by a model that never saw them: {shown}"]
    return [*lines, ""]


def add_to_package_card(package: Path, results: dict, command: str) -> None:
    """Append the companions to the package's card.md and store them in its card.json."""
    from infra.app.card_sections import add_to_card

    kept = {
        key: {field: value for field, value in results[key].items() if field != "confusion"}
        for key in _ROWS
        if key in results
    }
    add_to_card(package, lambda card: card.setdefault("companions", {}).update(kept),
                card_lines(results, command))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", help="a recipe built into --lake (e.g. cubic-lab)")
    parser.add_argument("--lake", required=True, help="the lake the recipe was built into")
    parser.add_argument("--out", default="companions.json", help="JSON of the results")
    parser.add_argument(
        "--only", choices=COMPANIONS, nargs="+", default=list(COMPANIONS), help="runs to make"
    )
    parser.add_argument("--card", help="a model package folder whose card gets the results")
    parser.add_argument(
        "--built-run", help="the build's run whose split is used (default: model-RECIPE)"
    )
    parser.add_argument(
        "--from-json", nargs="+", help="earlier --out files to add to --card instead of training"
    )
    args = parser.parse_args(argv)
    if args.from_json:
        results = {}
        for path in args.from_json:
            results.update(json.loads(Path(path).read_text()))
    else:
        results = companions(args.recipe, args.lake, tuple(args.only), args.built_run)
        Path(args.out).write_text(json.dumps(results, indent=2, sort_keys=True, default=str))
    if args.card:
        command = f"python scripts/recipe_companions.py {args.recipe} --lake LAKE"
        add_to_package_card(Path(args.card), results, command)
    for name in _ROWS:
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
