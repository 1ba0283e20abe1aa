"""Launch a per-worker training function on Ray Train with storage in the lake's run folder.

One function serves supervised training and MCD: it builds a ``TorchTrainer`` (DDP over
``num_workers`` workers, GPUs when ``use_gpu``), points ``RunConfig`` at ``runs/<run_id>`` of
the lake's storage, keeps the last :data:`CHECKPOINTS_KEPT` checkpoints, and lets
``FailureConfig(max_failures)`` restart a failed worker group from the last reported checkpoint.

Before starting it checks that the cluster has the GPUs or CPUs the workers need (Ray would wait
for them forever). ``trainer.fit()`` runs in a thread: the calling thread feeds the progress
listener set with :func:`progress_to` from a small Ray actor the workers post to, and a Ctrl-C
there stops this process's Ray and raises :class:`TrainingInterrupted` (the run's checkpoints
stay, so the same run resumes).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from train.errors import TrainingError, TrainingRunError, one_line

CHECKPOINTS_KEPT = 2
"""Checkpoints a run keeps (Ray Train deletes older ones): the last, and one before it in case
the last is being written when a worker dies."""

BOARD_PREFIX = "ebsdlake-progress/"
"""Name prefix of a run's progress actor (then the run's storage name); workers look it up."""
BOARD_NAMESPACE = "ebsdlake"
POLL_S = 0.25
"""How often the driver reads the progress actor while training runs."""


class ProgressListener(Protocol):
    """What follows a run on the driver (``infra.app.train_progress.TrainProgress``)."""

    def run_started(self, run_id: str, epochs: int, steps_per_epoch: int) -> None:
        """A run begins (or resumes) training ``epochs`` epochs of ``steps_per_epoch`` steps."""

    def event(self, run_id: str, event: dict[str, Any]) -> None:
        """One worker event: ``{"kind": "resume", "epoch"}``, ``{"kind": "step", "epoch",
        "step", "images"}`` or ``{"kind": "epoch", "epoch", "metrics"}``."""

    def run_ended(self, run_id: str) -> None:
        """The run's training stopped (finished, failed or interrupted)."""


_LISTENERS: list[ProgressListener] = []


@contextlib.contextmanager
def progress_to(listener: ProgressListener) -> Iterator[ProgressListener]:
    """Send the progress of every run trained inside the block to ``listener``."""
    _LISTENERS.append(listener)
    try:
        yield listener
    finally:
        _LISTENERS.remove(listener)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C while run ``run_id`` trained: Ray is stopped, the run's checkpoints are kept."""

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id


class ProgressBoard:
    """A Ray actor (no CPU) that keeps the events rank 0 posts until the driver reads them."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def post(self, event: dict[str, Any]) -> None:
        """Keep one event."""
        self.events.append(event)

    def drain(self) -> list[dict[str, Any]]:
        """Return and forget the events so far."""
        events, self.events = self.events, []
        return events


def check_cluster(run_id: str, num_workers: int, use_gpu: bool, ray_address: str | None) -> None:
    """Start or join Ray and refuse a run it cannot place, before anything is written."""
    from infra.ray_runtime import ensure_ray

    resources = ensure_ray(ray_address)
    where = f"the Ray cluster at {ray_address}" if ray_address else "the local Ray runtime"
    check_resources(resources, num_workers, use_gpu, run_id, where)


def check_resources(
    resources: dict, num_workers: int, use_gpu: bool, run_id: str, where: str
) -> None:
    """Refuse a run the cluster cannot place (Ray Train would wait for it forever).

    Ray Train gives each worker 1 GPU under ``use_gpu``, else 1 CPU; ``resources`` is
    ``ray.cluster_resources()`` and ``where`` names the cluster in the message.
    """
    kind = "GPU" if use_gpu else "CPU"
    have = int(resources.get(kind, 0))
    if have >= num_workers:
        return
    workers = f"{num_workers} worker{'s' if num_workers != 1 else ''}"
    verb = "need" if num_workers != 1 else "needs"
    advice = (
        "train without --gpu (use_gpu = false), or join a cluster with GPUs ([ray] address)"
        if use_gpu
        else f"use --workers {max(have, 1)} (num_workers) or a bigger cluster ([ray] address)"
    )
    raise TrainingError(
        f"run {run_id!r}: {where} has {have} {kind}s; {workers} {verb} 1 {kind} each; {advice}"
    )


def run_on_ray_train(
    worker_fn: Callable[[dict[str, Any]], None],
    loop_config: dict[str, Any],
    storage: tuple[str, Any, str],
    run_id: str,
    num_workers: int = 1,
    use_gpu: bool = False,
    max_failures: int = 2,
    ray_address: str | None = None,
    epochs: int = 0,
    steps_per_epoch: int = 0,
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
    epochs, steps_per_epoch
        The run's length, for the progress listener (:func:`progress_to`).

    Returns
    -------
    ray.train.Result
        With ``.checkpoint`` (last reported) and ``.metrics`` (rank 0's last report).
    """
    from ray.train import (
        CheckpointConfig,
        FailureConfig,
        LoggingConfig,
        RunConfig,
        ScalingConfig,
    )
    from ray.train.torch import TorchTrainer

    from infra.ray_runtime import ray_log_level

    check_cluster(run_id, num_workers, use_gpu, ray_address)
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
            logging_config=LoggingConfig(log_level=ray_log_level()),
        ),
    )
    listener = _LISTENERS[-1] if _LISTENERS else None
    try:
        result = _fit_watching(trainer, name, run_id, listener, epochs, steps_per_epoch)
    except KeyboardInterrupt:
        raise TrainingInterrupted(run_id) from None
    except Exception as exc:  # Ray wraps worker errors in several types
        raise TrainingRunError(f"run {run_id!r}: Ray Train failed: {failure_reason(exc)}") from exc
    if result.error is not None:
        raise TrainingRunError(
            f"run {run_id!r}: Ray Train failed: {failure_reason(result.error)}"
        ) from result.error
    if result.checkpoint is None:
        raise TrainingRunError(f"run {run_id!r}: finished without a checkpoint")
    return result


def _fit_watching(
    trainer: Any,
    name: str,
    run_id: str,
    listener: ProgressListener | None,
    epochs: int,
    steps_per_epoch: int,
) -> Any:
    """``trainer.fit()`` in a thread (Ray Train then leaves SIGINT alone) while this thread
    relays the workers' progress to ``listener``; Ctrl-C here stops Ray and re-raises."""
    import ray

    from infra.ray_runtime import stop_ray

    board = None
    if listener is not None:
        board = (
            ray.remote(num_cpus=0)(ProgressBoard)
            .options(name=BOARD_PREFIX + name, namespace=BOARD_NAMESPACE, get_if_exists=True)
            .remote()
        )
        listener.run_started(run_id, epochs, steps_per_epoch)
    outcome: dict[str, Any] = {}

    def fit() -> None:
        try:
            outcome["result"] = trainer.fit()
        except BaseException as exc:  # handed to the calling thread
            outcome["error"] = exc

    thread = threading.Thread(target=fit, name=f"ray-train-{run_id}", daemon=True)
    try:
        with _interrupt_latch() as interrupted:
            thread.start()
            while thread.is_alive():
                thread.join(POLL_S)
                if interrupted.is_set():
                    raise KeyboardInterrupt
                _relay(board, listener, run_id)
            if interrupted.is_set():
                raise KeyboardInterrupt
            _relay(board, listener, run_id)
    except KeyboardInterrupt:
        # Ray's own threads die with tracebacks while it shuts down under them: after Ctrl-C
        # they are debug logs, not output (the user gets one line and exit code 130)
        threading.excepthook = _thread_error_to_debug_log
        stop_ray()  # ends the controller and workers; the checkpoints stay in the run folder
        raise
    finally:
        if listener is not None:
            listener.run_ended(run_id)
        if board is not None and ray.is_initialized():
            ray.kill(board)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


@contextlib.contextmanager
def _interrupt_latch() -> Iterator[threading.Event]:
    """An event set by SIGINT while the block runs, besides the usual KeyboardInterrupt.

    Code the main thread calls into (Ray's ``ray.get``, its shutdown hooks) may catch the
    KeyboardInterrupt a Ctrl-C raises; the event keeps the request so the watch loop still
    acts on it. Outside the main thread (no signals there) the event is never set.
    """
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return

    def on_sigint(signum: int, frame: Any) -> None:
        interrupted.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def _thread_error_to_debug_log(args: threading.ExceptHookArgs) -> None:
    """Log a background thread's exception at debug level instead of printing a traceback."""
    import logging

    name = args.thread.name if args.thread is not None else "thread"
    logging.getLogger(__name__).debug(
        "after interrupt, %s ended with %s", name, one_line(args.exc_value or args.exc_type)
    )


def _relay(board: Any, listener: ProgressListener | None, run_id: str) -> None:
    """Hand the events posted to ``board`` since the last call to ``listener``."""
    if board is None or listener is None:
        return
    import ray

    for event in ray.get(board.drain.remote()):
        listener.event(run_id, event)


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
