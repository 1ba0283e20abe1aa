"""Start a local Ray runtime or join an existing cluster, the same way for every stage."""

from __future__ import annotations

import os


class RayStartError(RuntimeError):
    """Ray could not be started or the cluster could not be reached."""


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
        # Ray's own library logs (Train controller chatter, a placement-group cleaner that
        # warns every second without the dashboard's state API) are kept to errors unless
        # EBSDLAKE_RAY_LOG_LEVEL asks for more; our progress output is the driver's.
        level = os.environ.get("EBSDLAKE_RAY_LOG_LEVEL", "ERROR").upper()
        kwargs: dict = {
            "ignore_reinit_error": True,
            "include_dashboard": False,
            "log_to_driver": True,
            "logging_config": ray.LoggingConfig(log_level=level),
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
