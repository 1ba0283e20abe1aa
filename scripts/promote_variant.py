"""Make a recipe variant's package the recipe's own, once the recipe has adopted its settings.

A variant (``scripts/recipe_variant.py``) is ``model build`` with training fields changed, run on
the recipe's lake, split and seed. When the recipe is then changed to those settings, the
variant's package is what ``model build RECIPE`` makes, under another name. This copies it as
``OUT/RECIPE`` after checking that every recipe setting it was built with equals the recipe's
now (name and description aside), and says in its card where it came from::

    .venv/bin/python scripts/promote_variant.py OUT/cubic-lab-e40 cubic-lab \\
        --out train/shipped_models

The run id inside stays the variant's (it names the run in the lake that trained it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

IGNORED = ("name", "description", "varies")
"""Recipe fields a variant may differ in and still be the recipe."""


def differing_settings(built: dict[str, Any], current: dict[str, Any], where: str = "") -> list:
    """Dotted names of the settings that differ between two JSON-ready recipe dicts."""
    names = []
    for key in sorted(set(built) | set(current)):
        if not where and key in IGNORED:
            continue
        old, new = built.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            names += differing_settings(old, new, f"{where}{key}.")
        elif old != new:
            names.append(f"{where}{key}")
    return names


def promote(package: Path, recipe_name: str, out_dir: Path) -> Path:
    """Copy ``package`` to ``out_dir/recipe_name`` as that recipe's package (``ValueError``, one
    line, when its recorded recipe settings are not the recipe's)."""
    from infra.app.recipes import recipe

    card_path = package / "card.json"
    if not card_path.is_file():
        raise ValueError(f"{package}: not a model package (no card.json)")
    card = json.loads(card_path.read_text())
    build = card.get("build") or {}
    if "recipe_settings" not in build:
        raise ValueError(f"{card_path}: build.recipe_settings missing (not made by model build)")
    current = json.loads(json.dumps(dataclasses.asdict(recipe(recipe_name)), default=str))
    differ = differing_settings(build["recipe_settings"], current)
    if differ:
        raise ValueError(
            f"{card_path}: built with other {recipe_name} settings ({', '.join(differ[:6])})"
        )
    variant = card["name"]
    target = out_dir / recipe_name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(package, target)
    command = f"ebsdlake --lake LAKE model build {recipe_name}"
    note = (
        f"Built as the recipe variant `{variant}` (run `{card['run_id']}`, "
        f"scripts/recipe_variant.py) on the {recipe_name} recipe's lake, split and seed; the "
        f"recipe has since adopted its settings, so `{command}` runs them (run id "
        f"`model-{recipe_name}`)."
    )
    card["name"] = recipe_name
    build.update(command=command, recipe=recipe_name, promoted_from=variant, provenance=note)
    build["recipe_settings"]["name"] = recipe_name
    card["rebuild"] = [
        line.replace(f"model export {card['run_id']} {variant}",
                     f"model export {card['run_id']} {recipe_name}")
        for line in card.get("rebuild", [])
    ]  # fmt: skip
    (target / "card.json").write_text(json.dumps(card, indent=2, sort_keys=True))
    text = (target / "card.md").read_text()
    text = text.replace(f"# Model {variant}\n", f"# Model {recipe_name}\n", 1)
    text = re.sub(r"^Rebuild: `[^`]*`", f"Rebuild: `{command}`", text, count=1, flags=re.M)
    text = text.replace(
        f"model export {card['run_id']} {variant}\n",
        f"model export {card['run_id']} {recipe_name}\n",
    )
    text = text.replace("\n## Build\n", f"\n## Build\n\n{note}\n", 1)
    (target / "card.md").write_text(text)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path, help="the variant's package folder")
    parser.add_argument("recipe", help="the recipe that now has the variant's settings")
    parser.add_argument("--out", type=Path, required=True, help="parent folder of the copy")
    args = parser.parse_args(argv)
    try:
        target = promote(args.package, args.recipe, args.out)
    except ValueError as exc:
        print(f"promote_variant: {exc}", file=sys.stderr)
        return 2
    print(f"promote_variant: wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
