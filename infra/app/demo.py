"""``ebsdlake demo``: the main job end to end on the embedded default.

The demo is the shipped model's recipe (``cubic-lab``, see :mod:`infra.app.recipes`) at demo
scale: ingest the bundled prototypes and decorated cubic structure types, simulate them with the
recipe's master settings in parallel Ray actors, train the recipe's ResNet18 (lab detector, range
of pattern centres, camera degradations) on the projection stream, evaluate it on held-out
materials and write ``demo-report/``. Each stage reuses what the lake already holds, so a second
run skips finished simulations.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from infra.app.recipes import Recipe, recipe

#: The paper's six cubic space groups (Pm-3m, Pm-3n, Fm-3m, Fd-3m, Im-3m, Ia-3d).
PAPER_SPACE_GROUPS = (221, 223, 225, 227, 229, 230)

DEMO_RECIPE = "cubic-lab"
"""The recipe the demo runs at demo scale (the shipped cubic model's)."""


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo; the defaults fit in 15 minutes on a 2-core machine.

    Attributes
    ----------
    lake_url, report_dir
        Where the lake and the report go.
    quick
        Smallest settings (end-to-end tests): a few prototypes, no decorated crystals, tiny
        masters.
    decorated_per_type
        Decorated crystals per cubic structure type (twelve types), besides the prototypes.
    time_limit_s
        Per-master simulation time limit (seconds).
    epochs, patterns_per_material, batch_size, image_size
        Training settings of the recipe's run at demo scale (image_size None: the recipe's).
    cpu_threads
        torch threads of the training worker: both cores of the 2-core machine the demo is
        sized for (the shipped recipe trains on 1, the Ray worker's CPU; recorded in the run).
    holdout_folds
        One of this many stratified folds of materials is held out.
    seed
        One seed for decorations, the split, the stream and the network.
    prototypes
        Bundled prototypes to ingest (None: all).
    """

    lake_url: str = "./lake.zarr"
    report_dir: str = "demo-report"
    quick: bool = False
    decorated_per_type: int = 7
    time_limit_s: float = 300.0
    epochs: int = 14
    patterns_per_material: int = 48
    batch_size: int = 32
    image_size: int | None = None
    cpu_threads: int = 2
    holdout_folds: int = 4
    seed: int = 0
    prototypes: tuple[str, ...] | None = None

    def effective(self) -> DemoSettings:
        """The settings actually run: ``quick`` shrinks everything to test size."""
        if not self.quick:
            return self
        return replace(
            self,
            decorated_per_type=0,
            epochs=2,
            patterns_per_material=16,
            batch_size=16,
            image_size=48,
            holdout_folds=2,
            prototypes=("Ni", "Al", "Si", "Ge", "W", "Fe", "Ta"),
        )

    def recipe(self) -> Recipe:
        """The demo's recipe: :data:`DEMO_RECIPE` at these sizes (``quick``: tiny masters)."""
        base = recipe(DEMO_RECIPE)
        size = self.image_size or base.training.image_size
        training = base.training.refine(
            epochs=self.epochs,
            patterns_per_material=self.patterns_per_material,
            batch_size=self.batch_size,
            image_size=size,
            detector_shape=(size + 8, size + 8),
            num_workers=1,
            cpu_threads=self.cpu_threads,
            seed=self.seed,
        )
        simulation = base.simulation
        if self.quick:
            simulation = simulation.refine(
                npx=20, dmin_nm=0.12, energy_min_kev=20.0, mc_electrons=5_000
            )
        return base.refine(
            decorated_per_type=self.decorated_per_type,
            simulation=simulation,
            training=training,
            seed=self.seed,
        )


@dataclass
class DemoResult:
    """What the demo produced (for the summary table and tests)."""

    materials: int
    masters: int
    new_masters: int
    reused_masters: int
    failed: list[tuple[str, str]]
    accuracy: float
    chance: float
    classes: list
    report: Path
    stage_seconds: dict[str, float]


def _stage(console: Console, name: str) -> float:
    console.rule(f"[bold]{name}")
    return time.monotonic()


def _ingest(lake, settings: DemoSettings, console: Console) -> list[str]:
    from ingest.prototypes import load_prototypes
    from ingest.structure_types import generate_decorated, parse_structure_types
    from ingest.writer import IngestReport, ingest

    report = IngestReport()
    ingest(
        lake,
        load_prototypes(settings.prototypes, on_reject=report.reject),
        report,
        description="prototypes",
    )
    if settings.decorated_per_type:
        cooking = settings.recipe()
        types = parse_structure_types(cooking.structure_types)
        records = generate_decorated(
            types, settings.decorated_per_type, settings.seed, cooking.elements,
            on_reject=report.reject,
        )  # fmt: skip
        ingest(
            lake,
            records,
            report,
            total=settings.decorated_per_type * len(types),
            description="decorated cubic",
        )
    console.print(f"ingest: {report.summary()}")
    for what, reason in report.rejected:
        console.print(f"  rejected {what}: {reason}")
    return sorted(set(report.ingested) | set(report.skipped))


def _simulate(settings: DemoSettings, storage_options, ids, ray_address, console):
    from simulate.campaign import run_campaign

    return run_campaign(
        settings.lake_url,
        storage_options,
        settings.recipe().simulation,
        material_ids=ids,
        variants=0,
        seed=settings.seed,
        time_limit_s=settings.time_limit_s,
        ray_address=ray_address,
        progress=True,
        console=console,
    )


def _split(lake, ids: list[str], settings: DemoSettings) -> tuple[list[str], list[str]]:
    """Hold out one stratified fold of materials; classes seen only there go back to training."""
    from train.patterns.materials import holdout_fold, material_labels
    from train.targets import label_attribute

    labels = material_labels(lake, ids, label_attribute("disordered_spacegroup"))
    return holdout_fold(ids, labels, settings.holdout_folds, settings.seed)


def _train_and_evaluate(settings, storage_options, train_ids, test_ids, ray_address, console):
    from infra.app.train_progress import TrainProgress
    from train.runs.evaluate import evaluate_run, training_curve_png
    from train.runs.training import train_supervised

    config = settings.recipe().training
    run_id = f"demo-{DEMO_RECIPE}-seed{settings.seed}"
    console.print(
        f"train: {len(train_ids)} training materials, {len(test_ids)} held out, "
        f"{settings.epochs} epochs x {settings.patterns_per_material} patterns/material"
    )
    with TrainProgress(console):  # a bar per epoch instead of Ray Train's logs
        result = train_supervised(
            settings.lake_url,
            storage_options,
            train_ids,
            config,
            run_id,
            test_ids=test_ids,
            ray_address=ray_address,
        )
    evaluation = evaluate_run(
        settings.lake_url, storage_options, run_id, test_ids, settings.patterns_per_material
    )
    curve = training_curve_png(settings.lake_url, storage_options, run_id)
    return result, evaluation, curve


def run_demo(
    settings: DemoSettings | None = None,
    storage_options: dict | None = None,
    ray_address: str | None = None,
    console: Console | None = None,
) -> DemoResult:
    """Run ingest -> simulate -> train -> evaluate -> report and print a summary table."""
    from infra.app.demo_report import write_report
    from lake import Lake

    settings = (settings or DemoSettings()).effective()
    console = console or Console(stderr=False)
    storage_options = storage_options or {}
    seconds: dict[str, float] = {}
    lake = Lake.open(settings.lake_url, storage_options=storage_options, create=True)

    started = _stage(console, "1/4 ingest: prototypes and decorated cubic structure types")
    ids = _ingest(lake, settings, console)
    seconds["ingest"] = time.monotonic() - started

    started = _stage(console, "2/4 simulate: dynamical master patterns on Ray actors")
    campaign = _simulate(settings, storage_options, ids, ray_address, console)
    seconds["simulate"] = time.monotonic() - started
    simulated = [m for m in ids if "default" in lake.variants(m)]

    started = _stage(
        console,
        f"3/4 train: the {DEMO_RECIPE} recipe's ResNet18 on the projection stream (Ray Train)",
    )
    train_ids, test_ids = _split(lake, simulated, settings)
    result, evaluation, curve = _train_and_evaluate(
        settings, storage_options, train_ids, test_ids, ray_address, console
    )
    seconds["train+evaluate"] = time.monotonic() - started

    started = _stage(console, "4/4 report")
    report = write_report(
        Path(settings.report_dir),
        lake=lake,
        settings=settings,
        storage_options=storage_options,
        train_ids=train_ids,
        test_ids=test_ids,
        result=result,
        evaluation=evaluation,
        curve_png=curve,
        campaign=campaign,
        seconds=seconds,
    )
    seconds["report"] = time.monotonic() - started
    chance = 1.0 / max(1, len(evaluation.classes))
    outcome = DemoResult(
        materials=len(ids),
        masters=len(simulated),
        new_masters=campaign.completed,
        reused_masters=campaign.skipped_complete,
        failed=list(campaign.failed),
        accuracy=float(evaluation.accuracy),
        chance=chance,
        classes=list(evaluation.classes),
        report=report,
        stage_seconds=seconds,
    )
    console.print(summary_table(outcome))
    return outcome


def summary_table(result: DemoResult) -> Table:
    """The closing table: materials, masters, accuracy against chance, time per stage."""
    table = Table(title="ebsdlake demo", show_header=True)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("materials ingested", str(result.materials))
    table.add_row("masters complete in the lake", str(result.masters))
    table.add_row("  simulated in this run", str(result.new_masters))
    table.add_row("  reused from the lake", str(result.reused_masters))
    table.add_row("simulations failed", str(len(result.failed)))
    table.add_row("classes (disordered space group)", ", ".join(map(str, result.classes)))
    table.add_row("held-out accuracy", f"{result.accuracy:.1%}")
    table.add_row("chance", f"{result.chance:.1%}")
    for stage, seconds in result.stage_seconds.items():
        table.add_row(f"time: {stage}", f"{seconds:.0f} s")
    table.add_row("report", str(result.report / "README.md"))
    return table
