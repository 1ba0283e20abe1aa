"""Build a recipe with training fields changed, on the recipe's lake and split.

For recipe experiments (docs/RESULTS.md, "Training schedule and length"): the variant runs
``ebsdlake model build`` unchanged except for the named ``SupervisedConfig`` fields, so its
card compares directly with the recipe's own build::

    .venv/bin/python scripts/recipe_variant.py cubic-lab cubic-lab-e40 --lake LAKE \\
        --out OUT epochs=40
    .venv/bin/python scripts/recipe_variant.py cubic-lab cubic-lab-cos --lake LAKE \\
        --out OUT lr_schedule=cosine

``seed=N`` draws the stream and the network again on the recipe's own split (the recipe's
``training_seed``), to tell a change from chance::

    .venv/bin/python scripts/recipe_variant.py cubic-lab cubic-lab-s2 --lake LAKE --out OUT \\
        seed=2

A recipe field that lists names (``unseen_structure_types``, ``structure_types``,
``out_of_class``) takes them comma-separated, and one that counts crystals
(``synthetic_per_laue_class``, ``decorated_per_type``) a number; for example whole structure
types held out of training::

    .venv/bin/python scripts/recipe_variant.py cubic-lab cubic-lab-types --lake LAKE \\
        --out OUT unseen_structure_types=B1,L1_2,B3,B2

A master setting (``SimulationSettings``) is named ``simulation.FIELD=VALUE``; the masters
differ from the recipe's, so give the variant a lake of its own (a fresh one is ingested and
simulated like the recipe's, with the same materials and split)::

    .venv/bin/python scripts/recipe_variant.py cubic-lab cubic-lab-npx96 --lake LAKE96 \\
        --out OUT simulation.npx=96

The package is ``OUT/NAME``; masters already in the lake are reused. There is no recipe called
NAME, so the card's rebuild line is this command (``variant_command``), not ``model build
NAME``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any


def training_changes(pairs: list[str], training: Any) -> dict[str, Any]:
    """``FIELD=VALUE`` strings as typed changes to ``training`` (a ``SupervisedConfig``): each
    value takes the type of the field's current value (a flag that may also be a name, such as
    ``degrade``, takes either; ``none`` unsets an optional field, such as ``pc_range``); an
    unknown field or a value of the wrong kind is a one-line ``ValueError``."""
    fields = {f.name: str(f.type) for f in dataclasses.fields(training)}
    changes: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or name not in fields:
            raise ValueError(
                f"{pair!r}: expected FIELD=VALUE with FIELD one of the training fields"
            )
        current = getattr(training, name)
        kind = type(current)
        try:
            if text == "none":  # an optional setting switched off (e.g. pc_range=none)
                if "None" not in fields[name]:
                    raise ValueError("this field cannot be none")
                changes[name] = None
            elif "bool" in fields[name] and text in ("true", "false"):
                changes[name] = text == "true"  # e.g. degrade=false on a named set
            elif kind is bool:  # true/false taken above
                if "str" not in fields[name]:  # degrade: on/off or a named set
                    raise ValueError("expected true or false")
                changes[name] = text
            elif kind in (int, float):
                changes[name] = kind(text)
            elif kind is str or current is None:
                changes[name] = text
            else:
                raise ValueError(f"a {kind.__name__} field cannot be set from the command line")
        except ValueError as exc:
            raise ValueError(f"{pair!r}: {exc}") from None
    return changes


SIMULATION_PREFIX = "simulation."
"""How a change names a master setting (``simulation.npx=96``) rather than a training field."""


def simulation_changes(pairs: list[str], simulation: Any) -> tuple[dict[str, Any], list[str]]:
    """``(typed changes to simulation, the other pairs)``: ``simulation.FIELD=VALUE`` sets a
    ``SimulationSettings`` number or name, typed as its current value; an unknown field or a
    value of the wrong kind is a one-line ``ValueError``."""
    changes: dict[str, Any] = {}
    rest = []
    names = [f.name for f in dataclasses.fields(simulation)]
    for pair in pairs:
        if not pair.startswith(SIMULATION_PREFIX):
            rest.append(pair)
            continue
        name, sep, text = pair[len(SIMULATION_PREFIX) :].partition("=")
        current = getattr(simulation, name, None) if name in names else None
        if not sep or type(current) not in (int, float, str):
            raise ValueError(
                f"{pair!r}: expected simulation.FIELD=VALUE with FIELD a number or name of the "
                "master settings (npx, dmin_nm, energy_min_kev, bethe_strong, mc_electrons...)"
            )
        try:
            changes[name] = type(current)(text)
        except ValueError:
            raise ValueError(f"{pair!r}: expected a {type(current).__name__}") from None
    return changes, rest


RECIPE_NAME_LISTS = ("unseen_structure_types", "structure_types", "out_of_class")
"""Recipe fields (not training ones) a variant may set that list names, comma-separated."""
RECIPE_COUNTS = ("synthetic_per_laue_class", "decorated_per_type")
"""Recipe fields a variant may set that count crystals (a whole number >= 0)."""


def split_recipe_changes(pairs: list[str]) -> tuple[dict[str, Any], list[str]]:
    """``(recipe changes, the other pairs)``: ``FIELD=A,B`` for a field of
    :data:`RECIPE_NAME_LISTS` becomes ``{FIELD: ("A", "B")}`` (``FIELD=`` or ``none``: empty),
    ``FIELD=N`` for one of :data:`RECIPE_COUNTS` ``{FIELD: N}``; a count that is not a whole
    number >= 0 is a one-line ``ValueError``."""
    recipe: dict[str, Any] = {}
    rest = []
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if sep and name in RECIPE_NAME_LISTS:
            recipe[name] = tuple(v for v in text.split(",") if v and text != "none")
        elif sep and name in RECIPE_COUNTS:
            if not text.isdigit():
                raise ValueError(f"{pair!r}: expected a whole number of crystals >= 0")
            recipe[name] = int(text)
        else:
            rest.append(pair)
    return recipe, rest


def variant_command(recipe_name: str, name: str, pairs: list[str]) -> str:
    """The command that rebuilds the variant (what its card records)."""
    changes = " ".join(pairs)
    return f"python scripts/recipe_variant.py {recipe_name} {name} --lake LAKE --out OUT {changes}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", help="the recipe to vary (infra/app/recipes.py)")
    parser.add_argument("name", help="the variant's package name")
    parser.add_argument(
        "changes",
        nargs="+",
        metavar="FIELD=VALUE",
        help="training fields, recipe name lists, crystal counts or simulation.FIELD",
    )
    parser.add_argument("--lake", required=True)
    parser.add_argument("--out", default="models", help="parent folder of the package")
    args = parser.parse_args(argv)

    from infra.app.model_build import build_model
    from infra.app.recipes import recipe

    base = recipe(args.recipe)
    try:
        masters, pairs = simulation_changes(args.changes, base.simulation)
        recipe_fields, training_pairs = split_recipe_changes(pairs)
        changes = training_changes(training_pairs, base.training)
        simulation = base.simulation.refine(**masters)
    except ValueError as exc:
        print(f"recipe_variant: {exc}", file=sys.stderr)
        return 2
    seed = changes.pop("seed", None)  # the build seeds training with the recipe's seed
    variant = base.refine(
        **recipe_fields,
        name=args.name,
        training=base.training.refine(**changes),
        simulation=simulation,
        training_seed=seed,
        varies=args.recipe,
    )
    from lake.errors import EbsdlakeError

    try:
        build_model(
            variant, args.lake, args.out,
            command=variant_command(args.recipe, args.name, args.changes),
        )  # fmt: skip
    except EbsdlakeError as exc:
        print(f"recipe_variant: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
