"""Launch a per-worker training function on Ray Train with storage in the lake's run folder.

One function serves supervised training and MCD: it builds a ``TorchTrainer`` (DDP over
``num_workers`` workers, GPUs when ``use_gpu``), points ``RunConfig`` at ``runs/<run_id>`` of
the lake's storage, keeps the last :data:`CHECKPOINTS_KEPT` checkpoints, and lets
``FailureConfig(max_failures)`` restart a failed worker group from the last reported checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from train.errors import TrainingError, TrainingRunError, one_line

CHECKPOINTS_KEPT = 2
"""Checkpoints a run keeps (Ray Train deletes older ones): the last, and one before it in case
the last is being written when a worker dies."""


def run_on_ray_train(
    worker_fn: Callable[[dict[str, Any]], None],
    loop_config: dict[str, Any],
    storage: tuple[str, Any, str],
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
    storage
        ``(storage_path, storage_filesystem, name)``: where Ray writes checkpoints
        (``lake.Lake.run_storage(run_id)``, the run's folder).
    run_id
        Run name, for messages.
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
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from infra.ray_runtime import ensure_ray

    ensure_ray(ray_address)
    storage_path, storage_filesystem, name = storage
    trainer = TorchTrainer(
        worker_fn,
        train_loop_config=loop_config,
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu),
        run_config=RunConfig(
            name=name,
            storage_path=storage_path,
            storage_filesystem=storage_filesystem,
            failure_config=FailureConfig(max_failures=max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=CHECKPOINTS_KEPT),
        ),
    )
    try:
        result = trainer.fit()
    except Exception as exc:  # Ray wraps worker errors in several types
        raise TrainingRunError(f"run {run_id!r}: Ray Train failed: {failure_reason(exc)}") from exc
    if result.error is not None:
        raise TrainingRunError(
            f"run {run_id!r}: Ray Train failed: {failure_reason(result.error)}"
        ) from result.error
    if result.checkpoint is None:
        raise TrainingRunError(f"run {run_id!r}: finished without a checkpoint")
    return result


def failure_reason(exc: BaseException) -> str:
    """One line saying why Ray Train failed: the worker's own exception, not Ray's header.

    Ray Train raises ``WorkerGroupError`` (``worker_failures``: rank -> the exception raised in
    that worker), ``ControllerError`` (``controller_failure``), or ``RayTaskError`` wrappers
    (``cause``); the innermost exception's message is kept, prefixed by its type unless it is
    one of ours (a :class:`TrainingError` already reads as a sentence).
    """
    failures = getattr(exc, "worker_failures", None)
    if isinstance(failures, dict) and failures:
        rank = min(failures)
        return f"rank {rank}: {failure_reason(failures[rank])}"
    inner = getattr(exc, "controller_failure", None) or getattr(exc, "cause", None)
    if isinstance(inner, BaseException) and inner is not exc:
        return failure_reason(inner)
    if isinstance(exc, TrainingError | TrainingRunError):
        return one_line(exc)
    text = one_line(_without_ray_header(str(exc)))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _without_ray_header(message: str) -> str:
    """The last line of a traceback snippet in a Ray message (``module.Error: reason``), or the
    message itself when it carries no traceback."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if any(line.startswith("Traceback (most recent call last)") for line in lines):
        return lines[-1]
    return message
