"""``ebsdlake model build RECIPE``: ingest -> simulate -> train -> evaluate -> calibrate -> package.

Each stage reuses what the lake already holds (complete structures and masters are skipped, a
finished run is read back), so a build that stopped goes on where it stopped. The package's card
records the recipe, every setting, the measured accuracies, the wall time of each stage on this
machine, and the command that rebuilds it.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from infra.app.build_costs import add_master_costs, master_costs
from infra.app.card_sections import add_to_card, markdown_table
from infra.app.extra_evaluations import extra_evaluations, write_extra_evaluations
from infra.app.recipes import Recipe
from train.runs.unseen_groups import choose_unseen_groups


def build_model(
    recipe: Recipe,
    lake_url: str,
    out_dir: str | Path,
    storage_options: dict | None = None,
    ray_address: str | None = None,
    report: Callable[[str], None] = print,
    command: str | None = None,
) -> Path:
    """Run ``recipe`` into the lake at ``lake_url`` and write its package under ``out_dir``.

    ``command`` is the rebuild command the card records (default ``ebsdlake --lake LAKE model
    build NAME``; a recipe variant, which has no recipe of its name, passes its own).

    Returns
    -------
    pathlib.Path
        The package folder ``<out_dir>/<recipe.name>``.
    """
    from lake import Lake

    options = storage_options or {}
    seconds: dict[str, float] = {}
    Lake.open(lake_url, storage_options=options, create=True)

    started = time.monotonic()
    ingested = ingest_recipe(recipe, lake_url, options, report)
    outsiders = _ingest_out_of_class(recipe, lake_url, options)
    # refused here, before any master is simulated: an unknown type, a class left untrained
    trained_types, unseen_typed = _split_unseen_types(recipe, lake_url, options, ingested)
    unseen_groups = choose_unseen_groups(
        recipe.unseen_group_fraction,
        recipe.seed,
        _groups_with_crystals(recipe, lake_url, options, ingested),
    )
    seconds["ingest"] = time.monotonic() - started

    started = time.monotonic()
    campaigns = _simulate(recipe, lake_url, options, ingested, outsiders, ray_address)
    seconds["simulate"] = time.monotonic() - started
    costs = master_costs(lake_url, options, ingested + outsiders)

    started = time.monotonic()
    run_id = f"model-{recipe.name}"
    variants = recipe.training_config().variants
    seen, unseen = _split_unseen(lake_url, options, trained_types, unseen_groups, variants)
    unseen_typed = _with_masters(lake_url, options, unseen_typed, variants)
    summary = _train(recipe, lake_url, options, seen, run_id, ray_address, report)
    seconds["train+evaluate"] = time.monotonic() - started

    started = time.monotonic()
    from train.runs.calibrate import calibrate_run
    from train.runs.package import export_model

    calibration = calibrate_run(lake_url, options, run_id, recipe.calibration_patterns)
    report(f"calibrate: temperature {calibration.temperature:.2f}")
    seconds["calibrate"] = time.monotonic() - started

    started = time.monotonic()
    extra = extra_evaluations(
        lake_url, options, run_id, unseen, recipe.evaluation_patterns, unseen_typed
    )
    seconds["unseen groups/types+crystal system"] = time.monotonic() - started

    started = time.monotonic()
    refusals = _out_of_class(recipe, lake_url, options, run_id, outsiders)
    seconds["out-of-class"] = time.monotonic() - started
    target = Path(out_dir) / recipe.name
    package = export_model(lake_url, options, run_id, recipe.name, out_dir)
    write_extra_evaluations(package, extra, unseen_groups, recipe.unseen_structure_types)
    masters = {
        "simulated": sum(c.completed for c in campaigns),
        "reused": sum(c.skipped_complete for c in campaigns),
    }
    rebuild = command or f"ebsdlake --lake LAKE model build {recipe.name}"
    _add_build_record(package, recipe, seconds, masters, summary, refusals, rebuild)
    add_master_costs(package, costs)
    report(f"model {recipe.name}: wrote {target} ({sum(seconds.values()) / 60:.1f} min)")
    return package


def ingest_recipe(
    recipe: Recipe, lake_url: str, options: dict, report: Callable[[str], None] = print
) -> list[str]:
    """Ingest the recipe's structures; return the ids whose label is one of its classes (all
    of them when the recipe keeps every class; with a scoped label, whose every other value
    reads ``outside``, that class too)."""
    from ingest.writer import IngestReport, ingest
    from lake import Lake
    from train.patterns.materials import material_labels
    from train.targets import OUTSIDE, label_attribute

    lake = Lake.open(lake_url, storage_options=options, mode="r+")
    outcome = IngestReport()
    for description, records, total in _sources(recipe, outcome):
        ingest(lake, records, outcome, total=total, description=description)
    report(f"ingest: {outcome.summary()}")
    ids = sorted(set(outcome.ingested) | set(outcome.skipped))
    if recipe.classes is None:
        return ids
    labels = material_labels(lake, ids, label_attribute(recipe.training.label))
    kept = {*recipe.classes, OUTSIDE}
    return [m for m, label in zip(ids, labels, strict=True) if label in kept]


def _sources(recipe: Recipe, outcome):
    """``(description, records, count or None)`` of each structure source the recipe uses."""
    from ingest.cif import read_cifs
    from ingest.noncubic import noncubic_cif, noncubic_names
    from ingest.prototypes import load_prototypes
    from ingest.structure_types import generate_decorated, parse_structure_types
    from ingest.synthetic import generate

    if recipe.prototypes:
        yield "prototypes", load_prototypes(on_reject=outcome.reject), None
    if recipe.noncubic_prototypes:
        yield "non-cubic phases", read_cifs([noncubic_cif(n) for n in noncubic_names()]), None
    if recipe.decorated_per_type > 0:
        types = parse_structure_types(recipe.structure_types)
        records = generate_decorated(
            types, recipe.decorated_per_type, recipe.seed, recipe.elements,
            on_reject=outcome.reject,
        )  # fmt: skip
        yield "decorated", records, len(types) * recipe.decorated_per_type
    if recipe.synthetic_per_laue_class > 0:
        for laue, groups in recipe.laue_class_groups().items():
            per_group = -(-recipe.synthetic_per_laue_class // len(groups))  # ceiling
            records = generate(
                groups, per_group, recipe.seed, recipe.synthetic, on_reject=outcome.reject
            )
            yield f"synthetic {laue}", records, per_group * len(groups)


def _groups_with_crystals(
    recipe: Recipe, lake_url: str, options: dict, ids: list[str]
) -> list[int]:
    """The recipe's space groups that at least one ingested material has: a group the
    generator gave no crystal under the recipe's limits cannot be held out (it would be an
    empty "unseen" group in the card)."""
    if not recipe.unseen_group_fraction:
        return []
    from lake import Lake
    from train.patterns.materials import material_labels

    lake = Lake.open(lake_url, storage_options=options, mode="r")
    present = {int(g) for g in material_labels(lake, ids, "spacegroup_number")}
    wanted = (g for groups in recipe.laue_class_groups().values() for g in groups)
    return sorted(present.intersection(wanted))


def _split_unseen(
    lake_url: str, options: dict, ids: list[str], unseen_groups: list[int], variants
) -> tuple[list[str], list[str]]:
    """``(seen, unseen)``: materials of the space groups held out whole go to ``unseen`` (those
    with a master among ``variants``, as training filters its own)."""
    from lake import Lake
    from train.patterns.materials import material_labels
    from train.runs.unseen_groups import split_by_groups

    if not unseen_groups:
        return list(ids), []
    lake = Lake.open(lake_url, storage_options=options, mode="r")
    groups = material_labels(lake, ids, "spacegroup_number")
    seen, unseen = split_by_groups(list(ids), groups, unseen_groups)
    return seen, _with_masters(lake_url, options, unseen, variants)


def _with_masters(lake_url: str, options: dict, ids: list[str], variants) -> list[str]:
    """The materials of ``ids`` with a master among ``variants`` (as training filters its own)."""
    from lake import Lake
    from train.patterns.materials import available_variants

    if not ids:
        return []
    lake = Lake.open(lake_url, storage_options=options, mode="r")
    return [m for m in ids if available_variants(lake, m, variants)]


def _split_unseen_types(
    recipe: Recipe, lake_url: str, options: dict, ids: list[str]
) -> tuple[list[str], list[str]]:
    """``(trained, unseen)``: materials of the structure types the recipe holds out whole go to
    ``unseen``; a type set that cannot be held out is refused in one line."""
    from infra.app.unseen_types import split_by_structure_types
    from lake import Lake
    from train.targets import label_attribute

    if not recipe.unseen_structure_types:
        return list(ids), []
    lake = Lake.open(lake_url, storage_options=options, mode="r")
    label = label_attribute(recipe.training.label)
    return split_by_structure_types(lake, ids, recipe.unseen_structure_types, label)


def _ingest_out_of_class(recipe: Recipe, lake_url: str, options: dict) -> list[str]:
    """Ingest the recipe's bundled non-cubic phases; return their material ids."""
    from ingest.cif import read_cifs
    from ingest.noncubic import noncubic_cif
    from ingest.writer import IngestReport, ingest
    from lake import Lake

    if not recipe.out_of_class:
        return []
    records = list(read_cifs([noncubic_cif(name) for name in recipe.out_of_class]))
    lake = Lake.open(lake_url, storage_options=options, mode="r+")
    ingest(lake, records, IngestReport(), description="out-of-class phases")
    return [record.material_id for record in records]


def _out_of_class(
    recipe: Recipe, lake_url: str, options: dict, run_id: str, outsiders: list[str]
) -> list[dict]:
    """Share of "uncertain" calls of the calibrated run on the out-of-class phases and noise."""
    from lake import Lake
    from train.runs.inference import load_run
    from train.runs.out_of_class import noise_share, out_of_class_shares

    lake = Lake.open(lake_url, storage_options=options, mode="r")
    loaded = load_run(lake, run_id)
    simulated = [m for m in outsiders if "default" in lake.variants(m)]
    shares = (
        out_of_class_shares(loaded, lake_url, options, simulated, recipe.out_of_class_patterns)
        if simulated
        else []
    )
    rows = [
        {**share.to_dict(), "formula": lake.structure(share.source).get("formula")}
        for share in shares
    ]
    return [*rows, noise_share(loaded).to_dict()]


def _simulate(
    recipe: Recipe, lake_url: str, options: dict, ids: list[str], outsiders: list[str], ray_address
) -> list:
    """Simulate every missing master of ``ids`` at each of the recipe's beam energies and of the
    ``outsiders`` at its own (complete ones at these settings are kept, failed ones tried
    again); return the campaigns' summaries. Stops the build, naming the first failure, when
    any master failed: a model trained on part of its recipe's crystals would be another
    model."""
    from simulate.campaign import run_campaign
    from simulate.errors import SimulateError

    summaries = []
    for variant, settings in recipe.voltage_settings():
        chosen = ids + outsiders if variant == "default" else ids
        summary = run_campaign(
            lake_url, options, settings, material_ids=chosen, seed=recipe.seed,
            ray_address=ray_address, progress=True, retry_failed=True, variant_name=variant,
        )  # fmt: skip
        if summary.failed:
            where, reason = summary.failed[0]
            raise SimulateError(
                f"model build {recipe.name}: {len(summary.failed)} of {len(chosen)} masters "
                f"at {settings.voltage_kv:g} kV failed (first: {where}: {reason}); run the "
                "same command again to retry them"
            )
        summaries.append(summary)
    return summaries


def _train(
    recipe: Recipe, lake_url: str, options: dict, ids: list[str], run_id: str, ray_address, report
) -> dict:
    """Hold out materials per class, train on the rest of the recipe's materials ``ids`` (those
    with a master), evaluate on the held-out ones."""
    from lake import Lake
    from train.patterns.materials import available_variants
    from train.runs.kfold import run_protocol

    lake = Lake.open(lake_url, storage_options=options, mode="r")
    config = recipe.training_config()  # a training seed: another draw on the recipe's split
    ids = [m for m in ids if available_variants(lake, m, config.variants)]
    finished = _finished_summary(lake, run_id, config)
    if finished is not None:
        report(f"train: reusing the finished run {run_id!r} (same settings)")
        return finished
    summary = run_protocol(
        lake_url, options, config, run_id, folds=1, holdout_fraction=recipe.holdout_fraction,
        material_ids=ids, test_patterns_per_material=recipe.evaluation_patterns,
        ray_address=ray_address, split_seed=recipe.seed,
    )  # fmt: skip
    report(
        f"train: {len(summary['train_ids'])} materials, {len(summary['test_ids'])} held out; "
        f"held-out accuracy {summary.get('test_accuracy', float('nan')):.3f}"
    )
    return summary


def _finished_summary(lake, run_id: str, config) -> dict | None:
    """The stored protocol summary of ``run_id`` when it finished with these settings (a build
    that stopped after training goes on from there); None when there is no finished run. A
    finished run with other settings is refused by name (``Run.check_settings``)."""
    from train.runs.run import PROTOCOL_FILE, Run
    from train.runs.training import run_config_of

    run = Run(lake, run_id)
    if run.status != "finished" or not run.has(PROTOCOL_FILE):
        return None
    summary = run.get_json(PROTOCOL_FILE)
    wanted = run_config_of(
        "supervised", config, lake.url, summary.get("train_ids", []), None,
        summary.get("test_ids", []),
    )  # fmt: skip
    run.check_settings(wanted, ignore=("config.epochs",))
    return summary


def _add_build_record(
    package: Path,
    recipe: Recipe,
    seconds: dict[str, float],
    masters: dict[str, int],
    summary: dict,
    refusals: list[dict],
    command: str,
) -> None:
    """Add how the package was built (recipe, stage wall times, machine, ``command``) to its card.

    ``masters`` counts the masters this invocation simulated and those it found in the lake:
    when some were reused, the stage times are not a from-scratch build's, and the card says so.
    """
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}"

    def change(card: dict[str, Any]) -> None:
        card["build"] = {
            "recipe": recipe.name,
            "recipe_settings": json.loads(json.dumps(asdict(recipe), default=str)),
            "stage_seconds": {k: round(v, 1) for k, v in seconds.items()},
            "total_minutes": round(sum(seconds.values()) / 60, 1),
            "machine": machine,
            "command": command,
            "held_out_materials": list(summary.get("test_ids", [])),
            "masters": dict(masters),
        }
        card["out_of_class"] = refusals

    stages = [(stage, f"{value:.0f}") for stage, value in seconds.items()]
    outside = [
        (row.get("formula") or row["source"], row["patterns"], f"{row['uncertain']:.2f}",
         row["calls"] or "-")
        for row in refusals
    ]  # fmt: skip
    lines = [
        "",
        "## Build",
        "",
        f"Rebuild: `{command}` ({machine}).",
        "",
        _energies_line(recipe),
        "",
        *markdown_table(
            ("stage", "wall time (s)"), [*stages, ("total", f"{sum(seconds.values()):.0f}")]
        ),
        "",
        *_reuse_note(masters),
        "## Outside the classes",
        "",
        "Share called uncertain (higher is better): simulated non-cubic phases never trained on,",
        "and Poisson noise frames. A model with an `outside` class also flags a phase by calling",
        "it `outside` (in the confident calls).",
        "",
        *markdown_table(("source", "patterns", "uncertain", "confident calls"), outside),
        "",
    ]
    add_to_card(package, change, lines)


def _energies_line(recipe: Recipe) -> str:
    """The beam energies the masters were simulated at (what ``predict`` compares a file's
    recorded voltage with), and their energy bins."""
    shown = [
        f"{s.voltage_kv:g} kV (`{variant}`, bins {s.energy_min_kev:g}-{s.energy_max_kev:g} keV)"
        for variant, s in recipe.voltage_settings()
    ]
    return "Masters at beam energies: " + "; ".join(shown) + "."


def _reuse_note(masters: dict[str, int]) -> list[str]:
    """A card line when the build found masters in the lake (its times are not from scratch)."""
    if not masters.get("reused"):
        return []
    return [
        f"This build simulated {masters['simulated']} masters and reused {masters['reused']} "
        "already in the lake, so its simulate time is not a from-scratch build's; what every "
        "master cost is in the table below.",
        "",
    ]
