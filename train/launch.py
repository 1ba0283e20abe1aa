"""Launch a per-worker training function on Ray Train with storage in the lake's run folder.

One function serves supervised training and MCD: it builds a ``TorchTrainer`` (DDP over
``num_workers`` workers, GPUs when ``use_gpu``), points ``RunConfig`` at ``runs/<run_id>`` of
the lake's storage, and lets ``FailureConfig(max_failures)`` restart a failed worker group from
the last reported checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from train.runs import ray_storage
from train.training_errors import TrainingRunError


def run_on_ray_train(
    worker_fn: Callable[[dict[str, Any]], None],
    loop_config: dict[str, Any],
    lake,
    run_id: str,
    num_workers: int = 1,
    use_gpu: bool = False,
    max_failures: int = 2,
    ray_address: str | None = None,
):
    """Run ``worker_fn(loop_config)`` on every Ray Train worker and return the Ray result.

    Parameters
    ----------
    worker_fn
        The per-worker training loop; it reports metrics and checkpoints with ``ray.train``.
    loop_config
        Picklable arguments for ``worker_fn`` (configs, the stream, material ids).
    lake
        An open ``lake.Lake``; its ``run_location(run_id)`` is where Ray writes checkpoints.
    run_id
        Run name; the Ray experiment name and the folder under ``runs/``.
    num_workers, use_gpu
        ``ScalingConfig``: data-parallel workers, one GPU each when ``use_gpu``.
    max_failures
        How many worker-group failures to recover from (from the last checkpoint).
    ray_address
        Passed to ``infra.ray_runtime.ensure_ray``; ``None`` starts or reuses a local runtime.

    Returns
    -------
    ray.train.Result
        With ``.checkpoint`` (last reported) and ``.metrics`` (rank 0's last report).
    """
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from infra.ray_runtime import ensure_ray

    ensure_ray(ray_address)
    storage_path, storage_filesystem, name = ray_storage(lake, run_id)
    trainer = TorchTrainer(
        worker_fn,
        train_loop_config=loop_config,
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu),
        run_config=RunConfig(
            name=name,
            storage_path=storage_path,
            storage_filesystem=storage_filesystem,
            failure_config=FailureConfig(max_failures=max_failures),
        ),
    )
    try:
        result = trainer.fit()
    except Exception as exc:  # Ray wraps worker errors in several types
        raise TrainingRunError(f"run {run_id!r}: Ray Train failed: {_first_line(exc)}") from exc
    if result.error is not None:
        raise TrainingRunError(f"run {run_id!r}: Ray Train failed: {_first_line(result.error)}")
    if result.checkpoint is None:
        raise TrainingRunError(f"run {run_id!r}: finished without a checkpoint")
    return result


def _first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (Ray's are long)."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__
