"""Start a local Ray runtime or join an existing cluster, the same way for every stage."""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import sys
from pathlib import Path

from lake.errors import EbsdlakeError

#: ebsdlake's top-level packages, which Ray workers import to run our tasks and actors.
PACKAGES = ("infra", "ingest", "simulate", "lake", "train")


class RayStartError(EbsdlakeError, RuntimeError):
    """Ray could not be started or the cluster could not be reached."""


def shadowed_packages(directory: Path) -> list[str]:
    """Our packages that a Ray worker started from ``directory`` would import from elsewhere.

    Ray puts the driver's working directory at the front of its workers' import path, so a
    folder or module there named like one of ours (a lake folder called ``lake``, a script
    ``train.py``) wins over an editable install that is found by an import hook; the workers
    then fail with import errors. This resolves each name the way a worker would.
    """
    search = [str(directory)] + [entry for entry in sys.path if entry]
    shadowed = []
    for name in PACKAGES:
        spec = importlib.machinery.PathFinder.find_spec(name, search)
        if spec is None:  # found only by the install's import hook: the same code as ours
            continue
        ours = importlib.import_module(name).__file__
        if spec.origin is None or ours is None or Path(spec.origin) != Path(ours):
            shadowed.append(name)
    return shadowed


def check_worker_imports(directory: Path | None = None) -> None:
    """Raise :class:`RayStartError` naming what in ``directory`` (default: the working
    directory) would shadow our packages in Ray workers, before any worker starts."""
    directory = Path.cwd() if directory is None else directory
    shadowed = shadowed_packages(directory)
    if shadowed:
        names = ", ".join(f"'{name}'" for name in shadowed)
        raise RayStartError(
            f"{directory}: a folder or module named {names} here would replace ebsdlake's "
            "package of that name in Ray workers (Ray puts the working directory on their "
            "import path); run from another directory, rename it, or install ebsdlake with "
            "`make venv` (a path-based editable install is not affected)"
        )


def ray_log_level() -> str:
    """The level of Ray's own logs (``EBSDLAKE_RAY_LOG_LEVEL``, default ERROR): quiet unless asked."""
    return os.environ.get("EBSDLAKE_RAY_LOG_LEVEL", "ERROR").upper()


def ray_verbose() -> bool:
    """Whether Ray's processes may print at the user (log level below ERROR, as ``-v`` sets)."""
    return ray_log_level() not in ("ERROR", "CRITICAL", "FATAL")


def stop_ray() -> None:
    """Disconnect this process from Ray: a local runtime it started stops with all its
    processes; on a joined cluster the actors this driver owns (a run's workers) end."""
    import ray

    if ray.is_initialized():
        ray.shutdown()


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> dict:
    """Initialise Ray once per process, joining ``address`` when given.

    Parameters
    ----------
    address
        ``None`` or ``""`` starts a fresh local runtime (the embedded default; ``$RAY_ADDRESS``
        is honoured when set), never silently joining another Ray instance that happens to run
        on the machine; ``"auto"`` joins the
        cluster this node belongs to; ``"ray://host:10001"`` connects through Ray Client;
        ``"host:6379"`` joins a head node's GCS.
    num_cpus
        CPUs for a *local* runtime (ignored when joining a cluster); ``None`` or 0 uses all.

    Returns
    -------
    dict
        The cluster's resources as Ray reports them.
    """
    import ray

    if not ray.is_initialized():
        check_worker_imports()
        # Ray's own library logs (Train controller chatter, a placement-group cleaner that
        # warns every second without the dashboard's state API) and everything Ray's
        # processes print are kept from the user unless EBSDLAKE_RAY_LOG_LEVEL asks for more
        # (`ebsdlake -v` sets INFO); our progress output is the driver's.
        kwargs: dict = {
            "ignore_reinit_error": True,
            "include_dashboard": False,
            "log_to_driver": ray_verbose(),
            "logging_config": ray.LoggingConfig(log_level=ray_log_level()),
        }
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        target = address or os.environ.get("RAY_ADDRESS") or "local"
        kwargs["address"] = target
        if target == "local" and num_cpus:
            kwargs["num_cpus"] = int(num_cpus)
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = address or "a local runtime"
            raise RayStartError(f"Ray: could not start or join {where}: {exc}") from None
    return ray.cluster_resources()
