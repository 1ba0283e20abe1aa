"""A simulation campaign: select structures, plan the missing masters, run them on the farm.

:func:`run_campaign` is the Python entry point (the CLI and the demo call it). It is
resumable and idempotent: masters already complete in the lake at the requested settings are
skipped, so re-running after a crash finishes only the rest, and a second run of a finished
campaign starts nothing. A complete master at other settings stops the campaign before Ray starts
(one line: what differs; ``--variant-name`` or ``--replace``); damaged masters (marked by
``lake verify --repair``) are redone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from simulate.emsoft_io import check_mc_file
from simulate.engines import get_engine
from simulate.errors import EngineUnavailableError, SimulateInputError, setting_text
from simulate.farm import Farm, FarmEvent, FarmOptions, JobOutcome
from simulate.jobs import plan_jobs, select_materials
from simulate.settings import SimulationSettings

#: The farm's defaults (time limit, retries, CPUs per actor), written once on FarmOptions.
_FARM = FarmOptions()


@dataclass
class CampaignSummary:
    """What a campaign did.

    Attributes
    ----------
    lake_url
        The lake written into.
    jobs
        Jobs run (masters that were missing, incomplete, or failed with ``retry_failed``).
    completed
        Masters written complete in this campaign.
    failed
        ``(material/variant, reason)`` of jobs recorded as failed.
    skipped_complete, skipped_failed
        Masters left alone because already complete (at the same settings) / failed before
        (no ``retry_failed``).
    replaced
        Complete masters at other settings simulated again because of ``replace``.
    retries, actor_restarts
        Job retries after an actor died, and replacement actors started.
    wall_time_s
        Campaign wall time in seconds (Ray start included).
    outcomes
        One :class:`~simulate.farm.JobOutcome` per job run.
    """

    lake_url: str
    jobs: int = 0
    completed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped_complete: int = 0
    skipped_failed: int = 0
    replaced: int = 0
    retries: int = 0
    actor_restarts: int = 0
    wall_time_s: float = 0.0
    outcomes: list[JobOutcome] = field(default_factory=list)

    @property
    def masters_per_hour(self) -> float:
        """Completed masters per hour of campaign wall time."""
        return 3600.0 * self.completed / self.wall_time_s if self.wall_time_s > 0 else 0.0

    @property
    def ok(self) -> bool:
        """Whether no job failed."""
        return not self.failed


def check_farm_options(
    *,
    time_limit_s: float = _FARM.time_limit_s,
    max_retries: int = _FARM.max_retries,
    num_actors: int | None = None,
    cpus_per_actor: float = _FARM.cpus_per_actor,
    seed: int = 0,
    variants: int = 0,
    names: Mapping[str, str] | None = None,
) -> None:
    """Raise :class:`SimulateInputError` on a farm option out of range, before Ray starts.

    ``names`` maps a parameter to how the caller's user wrote it (``"--time-limit"``,
    ``"config file ebsdlake.toml: [simulate] time_limit_s"``); default the parameter name.
    """
    names = dict(names or {})

    def fail(param: str, value: object, need: str) -> NoReturn:
        raise SimulateInputError(f"{setting_text(names.get(param, param), value)}: {need}")

    if time_limit_s is None or not (math.isfinite(time_limit_s) and time_limit_s > 0):
        fail("time_limit_s", time_limit_s, "must be a positive number of seconds")
    if max_retries < 0:
        fail("max_retries", max_retries, "must be >= 0")
    if num_actors is not None and num_actors < 1:
        fail("num_actors", num_actors, "must be >= 1 (leave it out: one actor per GPU or CPUs)")
    if not (math.isfinite(cpus_per_actor) and cpus_per_actor > 0):
        fail("cpus_per_actor", cpus_per_actor, "must be a positive number of CPUs")
    if seed < 0:
        fail("seed", seed, "must be >= 0")
    if variants < 0:
        fail("variants", variants, "must be >= 0")


def _refuse_conflicts(url: str, conflicts: Sequence[tuple[str, str]]) -> NoReturn:
    """One line: the first complete master stored at other settings, and what to do."""
    key, differences = conflicts[0]
    more = f" ({len(conflicts) - 1} more masters differ too)" if len(conflicts) > 1 else ""
    raise SimulateInputError(
        f"{url}: {key} is already complete at other settings: {differences}{more}; "
        "simulate beside it under a new name (--variant-name NAME) or overwrite it (--replace)"
    )


def start_ray(address: str | None = None, num_cpus: int | None = None) -> dict[str, float]:
    """Join the Ray cluster at ``address`` or start a local one; returns its resources.

    Delegates to ``infra.ray_runtime.ensure_ray`` (the one place that starts Ray); a process
    that already initialised Ray (a test on ``ray.cluster_utils.Cluster``) keeps its runtime.
    """
    import ray

    if ray.is_initialized():
        return ray.cluster_resources()
    from infra.ray_runtime import ensure_ray

    return ensure_ray(address=address or None, num_cpus=num_cpus or None)


def run_campaign(
    lake_url: str,
    storage_options: dict[str, Any] | None = None,
    settings: SimulationSettings | None = None,
    material_ids: Sequence[str] | None = None,
    variants: int = 0,
    *,
    source: str | None = None,
    spacegroups: Iterable[int] | None = None,
    retry_failed: bool = False,
    replace: bool = False,
    variant_name: str = "default",
    seed: int = 0,
    num_actors: int | None = None,
    cpus_per_actor: float = _FARM.cpus_per_actor,
    time_limit_s: float = _FARM.time_limit_s,
    max_retries: int = _FARM.max_retries,
    max_actor_restarts: int | None = None,
    ray_address: str | None = None,
    ray_num_cpus: int | None = None,
    progress: bool = True,
    on_event: Callable[[FarmEvent], None] | None = None,
    console=None,
) -> CampaignSummary:
    """Simulate every missing master of the selected structures into the lake.

    Every option is checked (:func:`check_farm_options`, the ``mc_file``, the engine, the lake
    and the selection) before Ray starts.

    Parameters
    ----------
    lake_url, storage_options
        An existing lake (local path, ``s3://...``) and its fsspec options; a URL with no
        lake is an error (:class:`lake.LakeNotFoundError`), nothing is created.
    settings
        Simulation settings (paper defaults when ``None``).
    material_ids
        Structures to simulate; ``None`` takes every structure in the lake (then filtered
        by ``source`` and ``spacegroups``).
    variants
        Random B-factor variants per structure in addition to the default one.
    retry_failed
        Run again the masters recorded as failed.
    replace
        Simulate again (overwrite) complete masters stored at other settings than
        ``settings``; without it such masters stop the campaign before Ray starts, with one
        line saying what differs (complete masters at the same settings are always skipped).
    variant_name
        Name of the structure's own-B variant (random ones become ``NAME-b01``...), so that
        masters at new settings can sit beside the old ones.
    seed
        Seed of the random B-factors (same seed, same B values).
    num_actors
        Simulation actors; default one per GPU, or one per ``cpus_per_actor`` CPUs.
    time_limit_s
        Per-job wall-clock limit in seconds; a job past it is recorded failed.
    max_retries
        Retries of a job whose actor died.
    ray_address
        Ray cluster to join (``"auto"``, ``"host:6379"``, ``"ray://..."``); ``None`` starts a
        local runtime with ``ray_num_cpus`` CPUs.
    progress
        Show the live progress bar and the final summary table.
    on_event
        Also called with every :class:`~simulate.farm.FarmEvent` (tests, dashboards).
    """
    from lake import Lake
    from simulate.progress import CampaignProgress, summary_table

    started = time.monotonic()
    settings = settings or SimulationSettings()
    check_farm_options(
        time_limit_s=time_limit_s,
        max_retries=max_retries,
        num_actors=num_actors,
        cpus_per_actor=cpus_per_actor,
        seed=seed,
        variants=variants,
    )
    if settings.mc_file:
        check_mc_file(settings.mc_file)
    engine = get_engine(settings.engine)
    if not ray_address:
        engine.check_available(settings)

    # read-only: a mistyped URL is an error, not a new empty lake (the actors write)
    lake = Lake.open(lake_url, storage_options, mode="r")
    chosen = select_materials(lake, material_ids, source, spacegroups)
    if not chosen:
        raise SimulateInputError(f"{lake.url}: no structures match the selection; ingest first")
    plan = plan_jobs(
        lake,
        chosen,
        variants,
        seed,
        retry_failed,
        settings=settings,
        replace=replace,
        variant_name=variant_name,
    )
    if plan.conflicts:
        _refuse_conflicts(lake.url, plan.conflicts)
    summary = CampaignSummary(
        lake_url=lake.url,
        jobs=len(plan.jobs),
        skipped_complete=len(plan.complete),
        skipped_failed=len(plan.failed),
        replaced=len(plan.replaced),
    )
    if plan.jobs:
        resources = start_ray(ray_address, ray_num_cpus)
        gpus = int(resources.get("GPU", 0))
        use_gpu = gpus > 0 and settings.device != "cpu"
        if settings.device.startswith("cuda") and not use_gpu:
            raise EngineUnavailableError(
                f"device {settings.device!r}: the Ray cluster has no GPU; use --device auto"
            )
        worker_settings = settings if use_gpu else settings.refine(device="cpu")
        cpus = float(resources.get("CPU", 1))
        default_actors = gpus if use_gpu else max(1, int(cpus // max(cpus_per_actor, 1e-9)))
        actors = int(num_actors or default_actors)
        options = FarmOptions(
            num_actors=actors,
            use_gpu=use_gpu,
            cpus_per_actor=cpus_per_actor,
            time_limit_s=float(time_limit_s),
            max_retries=int(max_retries),
            max_actor_restarts=(
                max_actor_restarts
                if max_actor_restarts is not None
                else actors + len(plan.jobs) * (max_retries + 1)
            ),
        )
        farm = Farm(lake.url, lake.storage_options, worker_settings, options)
        with CampaignProgress(len(plan.jobs), enabled=progress, console=console) as bar:

            def handle(event: FarmEvent) -> None:
                bar(event)
                if on_event is not None:
                    on_event(event)

            summary.outcomes = farm.run(plan.jobs, on_event=handle)
        summary.retries = farm.retries
        summary.actor_restarts = farm.restarts
    summary.completed = sum(1 for o in summary.outcomes if o.status == "complete")
    summary.failed = [
        (f"{o.material_id}/{o.variant}", o.reason)
        for o in summary.outcomes
        if o.status != "complete"
    ]
    summary.wall_time_s = time.monotonic() - started
    if progress:
        from rich.console import Console

        (console or Console(stderr=True)).print(summary_table(summary))
    return summary
