"""Does a model trained at one beam energy call patterns recorded at another?

Labs record EBSD patterns at 10-30 kV; a recipe simulates its masters at one beam energy (the
cubic recipes: 20 keV, planes at 15 and 20 keV). A higher voltage narrows every band (the Bragg
angle goes with the wavelength: 30 keV bands are 19 % narrower than 20 keV ones) and changes
the band profiles, so a model may take another energy for another structure. This script
simulates the model's held-out materials (materials it never saw) at other beam energies,
beside their masters at the recipe's energy, and scores the model on each set the way its own
evaluation does (its detector, input size and pre-processing; the same orientations)::

    .venv/bin/python scripts/voltage_tolerance.py --model cubic-lab --lake LAKE \\
        --kv 10 15 20 25 30 --out voltage.json

LAKE may be empty: the model's recipe is ingested into it (structures only) and only the
held-out materials are simulated; masters at the recipe's own energy are the ``default``
variant (reused from a build's lake), the others are the variants ``kvNN`` (the variants a
recipe with ``beam_energies_kv`` trains on). Energy planes: the recipe's, moved with the beam
(15 and 20 keV at 20 kV; 25 and 30 keV at 30 kV). Writes the JSON (accuracy, 95 % interval over
materials and per class, per beam energy) and a PNG of it beside the JSON; ``--card PACKAGE``
also adds the figures to that package's card (``--from-json OUT --card PACKAGE``: from an
earlier run, without scoring again). A package of ``scripts/recipe_variant.py`` is named after
no recipe: its card names the recipe it varies (``recipe_settings.varies``, since 2026-12-07),
else give it with ``--recipe``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def variant_for(kv: float, recipe_kv: float) -> str:
    """The lake variant holding masters at beam energy ``kv`` (the recipe's own: ``default``)."""
    from simulate.variants import voltage_variant_name

    return "default" if kv == recipe_kv else voltage_variant_name(kv)


def simulate_at(lake: str, settings: Any, kv: float, ids: list[str], seed: int) -> None:
    """Simulate the masters of ``ids`` at beam energy ``kv`` into their variant (kept ones are
    reused)."""
    from simulate.campaign import run_campaign

    at_kv = settings.at_voltage(kv)
    summary = run_campaign(
        lake,
        None,
        at_kv,
        material_ids=ids,
        variants=0,
        variant_name=variant_for(kv, settings.voltage_kv),
        seed=seed,
        progress=True,
    )
    if summary.failed:
        raise SystemExit(f"{lake}: {len(summary.failed)} masters at {kv:g} keV failed")


def score_at(model: Any, lake: str, ids: list[str], per_material: int, variant: str) -> dict:
    """The model's accuracy on ``per_material`` projections of each material's ``variant``."""
    from train.runs.held_out import score_materials

    return score_materials(model, lake, None, ids, per_material, variant)


def figure(results: dict[str, dict], path: Path, title: str, symbols: dict[str, str]) -> None:
    """Accuracy (95 % interval over materials) and per-class accuracy against beam energy
    (classes named by ``symbols``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kvs = sorted(results, key=float)
    x = [float(k) for k in kvs]
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=120)
    low = [results[k]["interval_over_materials"]["low"] for k in kvs]
    high = [results[k]["interval_over_materials"]["high"] for k in kvs]
    ax.fill_between(x, low, high, color="0.85", label="95 % over materials")
    ax.plot(x, [results[k]["accuracy"] for k in kvs], "k-o", label="all")
    for label in results[kvs[0]]["per_class"]:
        ax.plot(x, [results[k]["per_class"].get(label, float("nan")) for k in kvs], "--", lw=1,
                label=symbols.get(label, label))  # fmt: skip
    ax.set(xlabel="beam energy (kV)", ylabel="held-out accuracy", ylim=(0, 1.02), title=title)
    ax.legend(fontsize=7, loc="lower left", ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def measuring_command(record: dict) -> str:
    """The command that measured ``record`` (its model, energies and sample size; any lake)."""
    energies = " ".join(sorted(record["by_kv"], key=float))
    return (f"python scripts/voltage_tolerance.py --model {Path(record['model']).name} "
            f"--lake LAKE --kv {energies} --patterns-per-material "
            f"{record['patterns_per_material']} --out FILE.json")  # fmt: skip


def card_lines(results: dict[str, dict], trained_kv: list[float], command: str) -> list[str]:
    """The ``## Beam energy`` section of a model card: held-out accuracy per beam energy."""
    from infra.app.card_sections import markdown_table

    rows = []
    for kv in sorted(results, key=float):
        found, interval = results[kv], results[kv]["interval_over_materials"]
        trained = "yes" if float(kv) in trained_kv else "no"
        rows.append((f"{float(kv):g}", trained, f"{found['accuracy']:.3f}",
                     f"{interval['low']:.3f}-{interval['high']:.3f}"))  # fmt: skip
    header = ("beam energy (kV)", "trained at", "held-out accuracy", "95% over materials")
    return [
        "",
        "## Beam energy",
        "",
        "The held-out materials simulated at other beam energies (energy bins moved with the",
        f"beam), scored as the evaluation above. Command: `{command}`.",
        "",
        *markdown_table(header, rows),
        "",
    ]


def add_to_package_card(package: Path, record: dict, command: str) -> None:
    """Store the per-energy figures in the package's ``card.json`` (``beam_energy``) and append
    their table to ``card.md``; a card that has them already is refused (one line)."""
    from infra.app.card_sections import add_to_card
    from train.runs.beam_energy import trained_beam_energies

    card = json.loads((package / "card.json").read_text())
    if "beam_energy" in card:
        raise SystemExit(f"{package / 'card.json'}: beam_energy: already there; not added again")
    kept = {
        kv: {k: v for k, v in found.items() if k in ("accuracy", "interval_over_materials",
                                                    "per_class", "n_patterns")}
        for kv, found in record["by_kv"].items()
    }  # fmt: skip
    trained = list(trained_beam_energies(card) or ())
    add_to_card(package, lambda c: c.update(beam_energy=kept),
                card_lines(record["by_kv"], trained, command))  # fmt: skip


def recipe_for(card: dict, name: str | None, model: str) -> Any:
    """The recipe ``name``, else the one the card was built with, or the one a recipe variant
    varies (its card's ``recipe_settings.varies``); else ``--recipe`` is asked for in one line."""
    from infra.app.recipes import RECIPES, recipe

    build = card["build"]
    wanted = name or build["recipe"]
    if not name and wanted not in RECIPES:
        wanted = (build.get("recipe_settings") or {}).get("varies") or wanted
    if wanted not in RECIPES:
        source = "--recipe" if name else f"{model}: card.json build.recipe"
        raise SystemExit(f"{source} {wanted!r}: not a recipe (a recipe variant's package? give "
                         f"--recipe BASE); known: {', '.join(RECIPES)}")  # fmt: skip
    return recipe(wanted)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cubic-lab", help="package folder or shipped name")
    parser.add_argument("--lake", help="lake URL (structures ingested if absent)")
    parser.add_argument("--kv", type=float, nargs="+", default=[10, 15, 20, 25, 30])
    parser.add_argument("--patterns-per-material", type=int, default=100)
    parser.add_argument("--materials", type=int, default=None, help="first N held-out only")
    parser.add_argument("--out", type=Path, help="JSON file to write")
    parser.add_argument("--card", type=Path, help="a package folder whose card gets the figures")
    parser.add_argument("--from-json", type=Path, help="an earlier --out to add to --card")
    parser.add_argument(
        "--recipe",
        help="the recipe whose settings to simulate at (default: the card's; give it "
        "for a package of scripts/recipe_variant.py, named after no recipe)",
    )
    args = parser.parse_args(argv)
    if args.from_json:
        if not args.card:
            parser.error("--from-json needs --card")
        record = json.loads(args.from_json.read_text())
        add_to_package_card(args.card, record, measuring_command(record))
        print(f"added the beam-energy figures of {args.from_json} to {args.card}")
        return 0
    if not args.out or not args.lake:
        parser.error("--lake and --out are required (or --from-json with --card)")

    from infra.app.model_build import ingest_recipe
    from lake import Lake
    from train.runs.inference import load_model
    from train.shipped import model_folder

    card = json.loads((model_folder(args.model) / "card.json").read_text())
    cooking = recipe_for(card, args.recipe, args.model)
    ids = list(card["protocol"]["test_ids"])[: args.materials]
    model = load_model(args.model)
    Lake.open(args.lake, create=True)
    ingest_recipe(cooking, args.lake, {})
    results: dict[str, dict] = {}
    for kv in args.kv:
        simulate_at(args.lake, cooking.simulation, kv, ids, cooking.seed)
        variant = variant_for(kv, cooking.simulation.voltage_kv)
        results[f"{kv:g}"] = score_at(model, args.lake, ids, args.patterns_per_material, variant)
        found = results[f"{kv:g}"]
        print(f"{kv:g} keV: {found['accuracy']:.3f} "
              f"({found['interval_over_materials']['low']:.3f}-"
              f"{found['interval_over_materials']['high']:.3f}) per class "
              + ", ".join(f"{k} {v:.3f}" for k, v in found["per_class"].items()),
              flush=True)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "model": str(args.model),
        "recipe": cooking.name,
        "recipe_kv": cooking.simulation.voltage_kv,
        "materials": ids,
        "patterns_per_material": args.patterns_per_material,
        "by_kv": results,
    }
    args.out.write_text(json.dumps(record, indent=1))
    symbols = {str(c): str(s) for c, s in zip(card["classes"], card["symbols"], strict=True)}
    title = f"{Path(args.model).name}: held-out materials vs beam energy"
    figure(results, args.out.with_suffix(".png"), title, symbols)
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    if args.card:
        add_to_package_card(args.card, record, measuring_command(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
