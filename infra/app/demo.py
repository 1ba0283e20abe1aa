"""``ebsdlake demo``: the main job end to end on the embedded default.

Ingest the bundled prototypes and synthetic cubic crystals of the paper's space groups, simulate
them at small settings in parallel Ray actors, train a ResNet18 on the projection stream, evaluate
it on held-out materials and write ``demo-report/``. Each stage reuses what the lake already
holds, so a second run skips finished simulations.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

#: The paper's six cubic space groups (Pm-3m, Pm-3n, Fm-3m, Fd-3m, Im-3m, Ia-3d).
PAPER_SPACE_GROUPS = (221, 223, 225, 227, 229, 230)


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo; the defaults fit in 15 minutes on a 2-core machine.

    Attributes
    ----------
    lake_url, report_dir
        Where the lake and the report go.
    quick
        Smallest settings (end-to-end tests): a few prototypes, no synthetic crystals.
    synthetic_per_group
        Synthetic crystals per paper space group, besides the 16 prototypes.
    npx, dmin_nm, energies_kev, mc_electrons, bethe
        Simulation settings: Lambert half-width, smallest d-spacing (nm), energy bins (keV),
        Monte Carlo electrons, Bethe thresholds (strong, weak, cutoff).
    epochs, patterns_per_material, batch_size, image_size
        Training settings of the ResNet18 run.
    seed
        One seed for synthetic crystals, the split, the stream and the network.
    """

    lake_url: str = "./lake.zarr"
    report_dir: str = "demo-report"
    quick: bool = False
    synthetic_per_group: int = 2
    npx: int = 40
    dmin_nm: float = 0.12
    energies_kev: tuple[float, float, float] = (15.0, 20.0, 5.0)
    mc_electrons: int = 20_000
    bethe: tuple[float, float, float] = (4.0, 8.0, 50.0)
    time_limit_s: float = 300.0
    epochs: int = 14
    patterns_per_material: int = 48
    batch_size: int = 32
    image_size: int = 64
    holdout_folds: int = 4
    seed: int = 0
    prototypes: tuple[str, ...] | None = None

    def effective(self) -> DemoSettings:
        """The settings actually run: ``quick`` shrinks everything to test size."""
        if not self.quick:
            return self
        from dataclasses import replace

        return replace(
            self,
            synthetic_per_group=0,
            npx=20,
            energies_kev=(20.0, 20.0, 1.0),
            mc_electrons=5_000,
            epochs=2,
            patterns_per_material=16,
            batch_size=16,
            image_size=48,
            holdout_folds=2,
            prototypes=("Ni", "Al", "Si", "Ge", "W", "Fe", "Ta"),
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
    from ingest.synthetic import SyntheticParams, generate
    from ingest.writer import IngestReport, ingest

    report = IngestReport()
    ingest(
        lake,
        load_prototypes(settings.prototypes, on_reject=report.reject),
        report,
        description="prototypes",
    )
    if settings.synthetic_per_group:
        params = SyntheticParams(n_elements=2, max_wyckoff=2)
        records = generate(
            PAPER_SPACE_GROUPS,
            per_group=settings.synthetic_per_group,
            seed=settings.seed,
            params=params,
            on_reject=report.reject,
        )
        ingest(
            lake,
            records,
            report,
            total=settings.synthetic_per_group * len(PAPER_SPACE_GROUPS),
            description="synthetic cubic",
        )
    console.print(f"ingest: {report.summary()}")
    for what, reason in report.rejected:
        console.print(f"  rejected {what}: {reason}")
    return sorted(set(report.ingested) | set(report.skipped))


def _simulate(settings: DemoSettings, storage_options, ids, ray_address, console):
    from simulate.campaign import run_campaign
    from simulate.settings import SimulationSettings

    low, high, step = settings.energies_kev
    strong, weak, cutoff = settings.bethe
    sim = SimulationSettings(
        npx=settings.npx,
        dmin_nm=settings.dmin_nm,
        energy_min_kev=low,
        energy_max_kev=high,
        energy_step_kev=step,
        mc_electrons=settings.mc_electrons,
        bethe_strong=strong,
        bethe_weak=weak,
        bethe_cutoff=cutoff,
        device="cpu",
        precision="single",
    )
    summary = run_campaign(
        settings.lake_url,
        storage_options,
        sim,
        material_ids=ids,
        variants=0,
        seed=settings.seed,
        time_limit_s=settings.time_limit_s,
        ray_address=ray_address,
        progress=True,
        console=console,
    )
    return summary


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
    from train.supervised import SupervisedConfig

    config = SupervisedConfig().refine(
        arch="resnet18",
        epochs=settings.epochs,
        patterns_per_material=settings.patterns_per_material,
        batch_size=settings.batch_size,
        image_size=settings.image_size,
        detector_shape=(settings.image_size + 8, settings.image_size + 8),
        lr=1e-2,
        lr_step_epochs=7,
        num_workers=1,
        seed=settings.seed,
    )
    run_id = f"demo-resnet18-seed{settings.seed}"
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

    started = _stage(console, "1/4 ingest: prototypes and synthetic cubic crystals")
    ids = _ingest(lake, settings, console)
    seconds["ingest"] = time.monotonic() - started

    started = _stage(console, "2/4 simulate: dynamical master patterns on Ray actors")
    campaign = _simulate(settings, storage_options, ids, ray_address, console)
    seconds["simulate"] = time.monotonic() - started
    simulated = [m for m in ids if "default" in lake.variants(m)]

    started = _stage(console, "3/4 train: ResNet18 on the projection stream (Ray Train)")
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
