"""Write the demo's report folder: a short markdown page and the figures it shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def master_figure(lake, material_id: str, out_png: Path) -> Path:
    """Plot one master pattern: the Monte Carlo-weighted north and south hemispheres.

    The energy planes are averaged with the Monte Carlo backscatter yield as weights, the way the
    projection stream sees the master.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    master = lake.master(material_id, variant="default")
    weights = lake.weights(material_id, variant="default").values.astype(np.float64)
    weights = (
        weights / weights.sum() if weights.sum() > 0 else np.full_like(weights, 1 / len(weights))
    )
    weighted = np.tensordot(weights, master.values.astype(np.float64), axes=(0, 0))
    energies = master.coords["energy"].values
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.8))
    for ax, plane, name in zip(axes, weighted, ("north", "south"), strict=True):
        ax.imshow(plane, cmap="gray", origin="lower")
        ax.set_title(f"{name} hemisphere")
        ax.axis("off")
    span = (
        f"{energies.min():g} keV"
        if energies.min() == energies.max()
        else f"{energies.min():g}-{energies.max():g} keV weighted by Monte Carlo yield"
    )
    fig.suptitle(f"{material_id}: square-Lambert master, {span}")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def _table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(
    folder: Path,
    *,
    lake,
    settings,
    storage_options: dict,
    train_ids: list[str],
    test_ids: list[str],
    result,
    evaluation,
    curve_png: bytes,
    campaign,
    seconds: dict[str, float],
) -> Path:
    """Write ``README.md`` and four figures into ``folder``; returns the folder."""
    from train.patterns.figures import pattern_grid
    from train.runs.scores import confusion_csv, confusion_png

    folder.mkdir(parents=True, exist_ok=True)
    shown = sorted(test_ids or train_ids)[0]
    master_figure(lake, shown, folder / "master_pattern.png")
    catalog = lake.catalog()
    complete = catalog[catalog["status"] == "complete"].drop_duplicates("material_id")
    by_class = complete.groupby("disordered_spacegroup_symbol")["material_id"].apply(list)
    grid_ids = [ids[0] for ids in by_class.values][:6]
    pattern_grid(
        settings.lake_url, storage_options, grid_ids, 5, folder / "patterns.png",
        seed=settings.seed, detector=settings.recipe().training.detector(),
    )  # fmt: skip
    (folder / "training_curve.png").write_bytes(curve_png)
    (folder / "confusion.png").write_bytes(confusion_png(evaluation))
    (folder / "confusion.csv").write_bytes(confusion_csv(evaluation))

    records = {m: lake.structure_record(m) for m in sorted(test_ids)}
    per_material = _table(
        [
            (
                m,
                record.formula,
                record.disordered_spacegroup_symbol,
                f"{evaluation.per_material.get(m, float('nan')):.2f}",
            )
            for m, record in records.items()
        ],
        ("held-out material", "formula", "disordered space group", "accuracy"),
    )
    history = _table(
        [
            (
                h["epoch"] + 1,
                f"{h['loss']:.3f}",
                f"{h['train_accuracy']:.3f}",
                f"{h.get('images_per_s', float('nan')):.0f}",
            )
            for h in result.history
        ],
        ("epoch", "loss", "train accuracy", "images/s"),
    )
    chance = 1.0 / max(1, len(evaluation.classes))
    failed = "\n".join(f"- {what}: {why}" for what, why in campaign.failed) or "none"
    cooking = settings.recipe()
    sim, training = cooking.simulation, cooking.training
    text = f"""# ebsdlake demo report

The main job end to end on the embedded default: local Ray, the lake at `{settings.lake_url}`,
the de-ebsd dynamical engine on CPU.

| stage | result | time |
|---|---|---|
| ingest | {len(catalog.drop_duplicates("material_id"))} structures (bundled prototypes + decorated cubic types) | {seconds.get("ingest", 0):.0f} s |
| simulate | {campaign.completed} new masters this run, {campaign.skipped_complete} reused, {len(campaign.failed)} failed | {seconds.get("simulate", 0):.0f} s |
| train + evaluate | ResNet18, {len(train_ids)} training / {len(test_ids)} held-out materials | {seconds.get("train+evaluate", 0):.0f} s |

**Held-out accuracy: {evaluation.accuracy:.1%}** over {evaluation.n_patterns} projected patterns
of materials never seen in training (label: compositionally-disordered space group,
{len(evaluation.classes)} classes, chance {chance:.1%}).

The `{cooking.name}` recipe at demo scale ({settings.decorated_per_type} decorated crystals per
structure type; `ebsdlake model build {cooking.name}` is the full size). Simulation: npx {sim.npx},
dmin {sim.dmin_nm} nm, energies {sim.energy_min_kev:g}-{sim.energy_max_kev:g} keV, Bethe
{sim.bethe_strong:g}/{sim.bethe_weak:g}/{sim.bethe_cutoff:g}, {sim.mc_electrons} Monte Carlo
electrons (the paper uses npx 300, dmin 0.05 nm, 10-20 keV, Bethe 8/50/100). Training:
{training.arch}, {training.epochs} epochs, {training.patterns_per_material} random orientations per
material and epoch, {training.image_size} px input, detector pattern centre {training.detector().pc}
(Bruker), pattern centres drawn from {training.pc_range}, camera degradations
{_degradation_name(training.degrade)}.

## One master pattern

![master pattern](master_pattern.png)

## Projected patterns (one row per class, random orientations, the recipe's lab detector)

![projected patterns](patterns.png)

## Training curve

![training curve](training_curve.png)

{history}

## Confusion matrix on held-out materials

![confusion matrix](confusion.png)

{per_material}

## Failed simulations

{failed}
"""
    (folder / "README.md").write_text(text)
    return folder


def _degradation_name(degrade: bool | str) -> str:
    """How the report names a run's ``degrade`` setting: the set's name, or off."""
    if degrade is True:
        return "'lab'"
    return f"'{degrade}'" if degrade else "off"
