"""The simulation worker: one engine, loaded once, running jobs and writing their masters.

:class:`SimulationWorker` is a plain class (tests call it directly); the farm wraps it in a
Ray actor, one per GPU (or per CPU slot). Each job writes only its own master group through
``lake``, so many workers write into one lake at once without locks. Failures that are the
job's own (bad structure, engine error, out of GPU memory) come back as a ``failed`` outcome
instead of an exception, so a bad input never costs the actor its process.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from lake import LakeInputError
from lake.errors import one_line
from simulate.engines import get_engine
from simulate.errors import SimulateError
from simulate.jobs import Job
from simulate.settings import SimulationSettings

#: Outcome statuses a worker returns.
COMPLETE, FAILED, RETRY = "complete", "failed", "retry"


class SimulationWorker:
    """Runs jobs with one engine instance and writes each master into the lake.

    Parameters
    ----------
    lake_url, storage_options
        The lake to write into (opened once, in this process).
    settings
        Simulation settings shared by every job.
    threads
        Torch intra-op threads (the CPUs this worker was given); 0 leaves torch's default.
    """

    def __init__(
        self,
        lake_url: str,
        storage_options: dict[str, Any] | None,
        settings: SimulationSettings,
        threads: int = 0,
    ) -> None:
        from lake import Lake

        if threads > 0:
            import torch

            torch.set_num_threads(int(threads))
        self.settings = settings
        self.engine = get_engine(settings.engine)
        self.engine_version = self.engine.version()
        self.lake = Lake.open(lake_url, storage_options, mode="r+")  # never a new lake
        warm_up = getattr(self.engine, "warm_up", None)
        self.warm_up_s = warm_up(settings.device) if warm_up is not None else 0.0

    def describe(self) -> dict[str, Any]:
        """Where this worker runs: ``pid``, ``host`` and (under Ray) ``node_id``."""
        info: dict[str, Any] = {"pid": os.getpid(), "host": socket.gethostname()}
        try:
            import ray

            if ray.is_initialized():
                info["node_id"] = ray.get_runtime_context().get_node_id()
        except ImportError:  # pragma: no cover - ray is a dependency
            pass
        return info

    def run(self, job: Job, attempt: int = 1) -> dict[str, Any]:
        """Simulate ``job`` and write its master; returns an outcome dict.

        Keys: ``status`` (``complete``, ``failed`` or ``retry`` for transient store
        errors), ``reason``, ``wall_time_s`` and the worker's :meth:`describe` fields.
        """
        started = time.perf_counter()
        outcome: dict[str, Any] = {"key": job.key, **self.describe()}
        try:
            result = self.engine.run(job.structure, self.settings, job.bfactors_nm2)
        except SimulateError as exc:
            return {**outcome, "status": FAILED, "reason": f"engine: {exc}"}
        except Exception as exc:  # noqa: BLE001 - any engine failure is this job's, recorded
            if _is_out_of_memory(exc):
                _release_gpu_memory()
                return {
                    **outcome,
                    "status": FAILED,
                    "reason": f"out of GPU memory: {one_line(exc)}",
                }
            return {**outcome, "status": FAILED, "reason": f"{type(exc).__name__}: {one_line(exc)}"}
        attrs = {
            **result.attrs,
            "variant_kind": job.variant_kind,
            "attempt": int(attempt),
            "host": outcome["host"],
        }
        try:
            self.lake.write_master(
                job.material_id,
                job.variant,
                result.master,
                energies_kev=result.energies_kev,
                weights=result.weights,
                attrs=attrs,
            )
        except LakeInputError as exc:
            return {**outcome, "status": FAILED, "reason": f"lake refused the master: {exc}"}
        except (OSError, RuntimeError) as exc:
            return {**outcome, "status": RETRY, "reason": f"lake write: {one_line(exc)}"}
        return {
            **outcome,
            "status": COMPLETE,
            "reason": "",
            "engine_wall_time_s": float(result.attrs.get("wall_time_s", 0.0)),
            "wall_time_s": round(time.perf_counter() - started, 3),
        }


def _is_out_of_memory(exc: BaseException) -> bool:
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover
        pass
    return isinstance(exc, MemoryError) or "out of memory" in str(exc).lower()


def _release_gpu_memory() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass
