"""The farm: a pool of Ray simulation actors fed (material, variant) jobs by the driver.

One actor per GPU (``num_gpus=1``) or per CPU slot where the cluster has no GPU; each loads
its engine once and runs one job at a time. The driver keeps every actor busy with
``ray.wait`` and owns the fault policy, so that it is explicit and bounded:

- an actor that dies (process killed, node lost) is replaced by a fresh one (a restart,
  bounded by ``max_actor_restarts``) and its job is retried (bounded by ``max_retries``);
- a job past ``time_limit_s`` has its actor killed and replaced, and is recorded as failed
  ("timeout after N s") in the lake; the campaign goes on;
- a job whose engine fails (bad structure, out of GPU memory) is recorded as failed.

Ray's own restart/retry (``max_restarts``, ``max_task_retries``) is switched off for these
actors: a timed-out job must not be re-run silently, and a crash must count against the job.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lake import canonical_url
from lake.errors import one_line
from simulate.engine_base import bfactor_attrs
from simulate.errors import SimulateError
from simulate.jobs import Job
from simulate.settings import SimulationSettings
from simulate.worker import FAILED, RETRY, SimulationWorker


@dataclass(frozen=True)
class FarmOptions:
    """How the farm runs.

    Attributes
    ----------
    num_actors
        Simulation actors to start.
    use_gpu
        Give each actor one GPU (``num_gpus=1``); otherwise ``cpus_per_actor`` CPUs.
    cpus_per_actor
        CPUs reserved per actor (also its torch thread count).
    time_limit_s
        Wall-clock limit of one job in seconds, counted from when its actor starts it.
    max_retries
        Retries of a job whose actor died (attempts = 1 + max_retries).
    max_actor_restarts
        Replacement actors the farm may start over the whole campaign.
    startup_timeout_s
        How long an actor may take to be scheduled and load its engine.
    poll_interval_s
        Longest wait between checks of the time limits.
    """

    num_actors: int = 1
    use_gpu: bool = False
    cpus_per_actor: float = 1.0
    time_limit_s: float = 43_200.0
    max_retries: int = 2
    max_actor_restarts: int = 8
    startup_timeout_s: float = 900.0
    poll_interval_s: float = 0.5


@dataclass(frozen=True)
class FarmEvent:
    """Something that happened to a job: ``started``, ``complete``, ``failed``, ``retry``.

    ``worker`` holds the actor's ``pid``, ``host`` and ``node_id``.
    """

    kind: str
    job: Job
    attempt: int
    reason: str = ""
    worker: dict[str, Any] = field(default_factory=dict)
    wall_time_s: float = 0.0
    was_running: bool = True


@dataclass
class JobOutcome:
    """The final state of one job after the farm is done with it."""

    material_id: str
    variant: str
    status: str
    reason: str = ""
    attempts: int = 1
    wall_time_s: float = 0.0


@dataclass
class _Slot:
    actor: Any
    ready_ref: Any = None
    started_at: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    alive: bool = True

    @property
    def starting(self) -> bool:
        return self.ready_ref is not None


@dataclass
class _Running:
    slot: int
    job: Job
    attempt: int
    started_at: float


EventCallback = Callable[[FarmEvent], None]


class Farm:
    """Runs jobs on Ray actors and writes failures into the lake (Ray must be initialised).

    Parameters
    ----------
    lake_url, storage_options
        The lake the workers write into.
    settings
        Simulation settings for every job.
    options
        Pool size and fault policy.
    """

    def __init__(
        self,
        lake_url: str,
        storage_options: dict[str, Any] | None,
        settings: SimulationSettings,
        options: FarmOptions,
    ) -> None:
        if options.num_actors < 1:
            raise SimulateError(f"farm: num_actors={options.num_actors}, need at least 1")
        self.lake_url = canonical_url(lake_url)
        self.storage_options = dict(storage_options or {})
        self.settings = settings
        self.options = options
        self.restarts = 0
        self.retries = 0

    # ---- actors ---------------------------------------------------------------------------
    def _new_slot(self) -> _Slot:
        import ray

        opts = self.options
        remote = ray.remote(SimulationWorker).options(
            num_cpus=opts.cpus_per_actor,
            num_gpus=1 if opts.use_gpu else 0,
            max_restarts=0,
            max_task_retries=0,
        )
        threads = max(1, int(opts.cpus_per_actor))
        actor = remote.remote(self.lake_url, self.storage_options, self.settings, threads)
        return _Slot(actor=actor, ready_ref=actor.describe.remote(), started_at=time.monotonic())

    def _replace(self, slots: list[_Slot], index: int) -> None:
        import ray

        with contextlib.suppress(Exception):  # the actor may already be gone
            ray.kill(slots[index].actor, no_restart=True)
        if self.restarts >= self.options.max_actor_restarts:
            slots[index].alive = False
            return
        self.restarts += 1
        slots[index] = self._new_slot()

    # ---- the driver loop ------------------------------------------------------------------
    def run(self, jobs: Sequence[Job], on_event: EventCallback | None = None) -> list[JobOutcome]:
        """Run ``jobs`` to completion or failure; returns one outcome per job."""
        import ray
        from ray.exceptions import RayActorError, RayError

        from lake import Lake

        lake = Lake.open(self.lake_url, self.storage_options, mode="r+")
        emit = on_event or (lambda event: None)
        queue: deque[tuple[Job, int]] = deque((job, 1) for job in jobs)
        outcomes: list[JobOutcome] = []
        count = min(self.options.num_actors, max(1, len(jobs)))
        slots = [self._new_slot() for _ in range(count)] if jobs else []
        running: dict[Any, _Running] = {}

        def finish(run: _Running, status: str, reason: str, wall: float, info: dict) -> None:
            was_running = run.slot >= 0
            outcomes.append(
                JobOutcome(run.job.material_id, run.job.variant, status, reason, run.attempt, wall)
            )
            if status == FAILED:
                self._record_failure(lake, run.job, reason, run.attempt)
            emit(FarmEvent(status, run.job, run.attempt, reason, info, wall, was_running))

        def retry_or_fail(run: _Running, reason: str, info: dict) -> None:
            if run.attempt <= self.options.max_retries:
                self.retries += 1
                queue.append((run.job, run.attempt + 1))
                emit(FarmEvent(RETRY, run.job, run.attempt, reason, info))
            else:
                finish(run, FAILED, f"{reason} (after {run.attempt} attempts)", 0.0, info)

        while queue or running:
            self._assign(slots, queue, running, emit)
            if not any(s.alive for s in slots):
                for job, attempt in queue:
                    run = _Running(-1, job, attempt, time.monotonic())
                    reason = f"no simulation actor left ({self.restarts} restarts used)"
                    finish(run, FAILED, reason, 0.0, {})
                queue.clear()
                break
            waiting = [s.ready_ref for s in slots if s.alive and s.starting] + list(running)
            if not waiting:
                continue
            ready, _ = ray.wait(waiting, num_returns=1, timeout=self.options.poll_interval_s)
            if ready:  # everything ready now, so an actor that started gets work at once
                ready, _ = ray.wait(waiting, num_returns=len(waiting), timeout=0)
            for ref in ready:
                if ref in running:
                    run = running.pop(ref)
                    info = dict(slots[run.slot].info)
                    try:
                        outcome = ray.get(ref)
                    except RayActorError as exc:
                        self._replace(slots, run.slot)
                        retry_or_fail(run, f"actor died: {one_line(exc, first_line=True)}", info)
                        continue
                    except RayError as exc:
                        finish(run, FAILED, f"ray: {one_line(exc, first_line=True)}", 0.0, info)
                        continue
                    slots[run.slot].info.update(
                        {k: outcome[k] for k in ("pid", "host", "node_id") if k in outcome}
                    )
                    status = outcome.get("status")
                    if status == RETRY:
                        retry_or_fail(run, outcome.get("reason", ""), info)
                    else:
                        wall = float(outcome.get("wall_time_s", 0.0))
                        finish(run, status or FAILED, outcome.get("reason", ""), wall, info)
                else:
                    self._started(slots, ref)
            self._enforce_limits(slots, running, finish)
        for slot in slots:
            if slot.alive:
                ray.kill(slot.actor, no_restart=True)
        return outcomes

    def _assign(self, slots, queue, running, emit) -> None:
        busy = {run.slot for run in running.values()}
        for index, slot in enumerate(slots):
            if not queue:
                return
            if not slot.alive or slot.starting or index in busy:
                continue
            job, attempt = queue.popleft()
            ref = slot.actor.run.remote(job, attempt)
            running[ref] = _Running(index, job, attempt, time.monotonic())
            emit(FarmEvent("started", job, attempt, "", dict(slot.info)))

    def _started(self, slots: list[_Slot], ref) -> None:
        import ray
        from ray.exceptions import RayError

        index = next(i for i, s in enumerate(slots) if s.ready_ref == ref)
        try:
            slots[index].info = ray.get(ref)
            slots[index].ready_ref = None
        except RayError:
            self._replace(slots, index)

    def _enforce_limits(self, slots, running, finish) -> None:
        now = time.monotonic()
        limit = self.options.time_limit_s
        for ref, run in list(running.items()):
            if now - run.started_at > limit:
                running.pop(ref)
                info = dict(slots[run.slot].info)
                self._replace(slots, run.slot)
                finish(run, FAILED, f"timeout after {limit:g} s", now - run.started_at, info)
        for index, slot in enumerate(slots):
            late = now - slot.started_at > self.options.startup_timeout_s
            if slot.alive and slot.starting and late:
                self._replace(slots, index)

    def _record_failure(self, lake, job: Job, reason: str, attempts: int) -> None:
        attrs = {
            **self.settings.to_attrs(),
            "variant_kind": job.variant_kind,
            "bfactors_nm2": bfactor_attrs(job.structure, job.bfactors_nm2),
            "attempts": int(attempts),
        }
        lake.mark_failed(job.material_id, job.variant, reason=reason, attrs=attrs)
