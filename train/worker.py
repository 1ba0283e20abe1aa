"""What every Ray Train worker does, whatever it trains: device, precision, the epoch loop with
resume and checkpoints, metric reduction.

Supervised training and MCD each give :func:`run_epochs` their modules, optimisers and one
epoch's loop; resuming from the last checkpoint, reporting and checkpointing are written once
here. Everything runs in the worker process, so it imports no lake code. On GPU the forward pass
runs under bf16 autocast with channels-last tensors; on CPU in float32. Rank 0 posts its steps
and epochs to the driver's progress actor (``train.launch.ProgressBoard``) when there is one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray.train
import ray.train.torch
import torch
import torch.distributed as dist

from train.launch import BOARD_NAMESPACE, BOARD_PREFIX

CHECKPOINT_STATE = "state.pt"
_ARMED: list[tuple[Any, int]] = []
"""(progress actor, epoch) for the next training pass of :func:`batches_on_device`."""


def worker_device() -> torch.device:
    """Return this worker's device (its GPU under ``use_gpu``, else the CPU)."""
    return ray.train.torch.get_device()


def precision_context(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (the paper-scale setting), nothing on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(patterns: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move a (B, 1, H, W) batch to ``device``, channels-last on CUDA."""
    if device.type == "cuda":
        return patterns.to(device, non_blocking=True, memory_format=torch.channels_last)
    return patterns.to(device)


def prepare(module: torch.nn.Module, device: torch.device, ddp: bool = True) -> torch.nn.Module:
    """Move a module to the worker's device (channels-last on CUDA) and wrap it in DDP."""
    if device.type == "cuda":
        module = module.to(memory_format=torch.channels_last)
    if ddp:
        return ray.train.torch.prepare_model(module)
    return module.to(device)


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """Return the plain module inside a DDP wrapper (for state dicts)."""
    return module.module if hasattr(module, "module") else module


def sum_across_workers(values: list[float], device: torch.device) -> list[float]:
    """Sum a short list of numbers over all workers (identity without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def maybe_fail(fault: dict[str, Any] | None, rank: int, epoch: int, step: int) -> None:
    """Kill this worker process once, for the fault-tolerance test.

    ``fault`` is ``{"rank": r, "epoch": e, "step": s, "marker": path, "delay_s": d}``: rank
    ``r`` exits with ``os._exit(1)`` at that step the first time only, which it records by
    creating ``marker``. It first waits ``d`` seconds (default 0) so that Ray Train's controller
    has registered the previous epoch's checkpoint (it polls workers, so a crash right after a
    report can otherwise race the registration on a loaded machine).
    """
    if not fault or fault.get("rank") != rank:
        return
    if epoch != fault.get("epoch", 0) or step != fault.get("step", 0):
        return
    marker = Path(fault["marker"])
    if marker.exists():
        return
    marker.write_text(f"killed rank {rank} at epoch {epoch} step {step}\n")
    time.sleep(float(fault.get("delay_s", 0.0)))
    os._exit(1)


@dataclass
class Trainable:
    """What one worker trains and checkpoints.

    Attributes
    ----------
    modules
        Networks by name (as prepared, possibly DDP-wrapped); their state dicts form the model.
    optimizers
        Optimisers and schedulers by name (anything with ``state_dict``/``load_state_dict``).
    """

    modules: dict[str, torch.nn.Module]
    optimizers: dict[str, Any]

    def state(self, epoch: int, history: list[dict[str, float]]) -> dict[str, Any]:
        """The checkpoint of this epoch: module and optimiser states, epoch and history."""
        return {
            "modules": {name: unwrap(m).state_dict() for name, m in self.modules.items()},
            "optimizers": {name: o.state_dict() for name, o in self.optimizers.items()},
            "epoch": epoch,
            "history": history,
        }

    def restore(self, state: dict[str, Any]) -> tuple[int, list[dict[str, float]]]:
        """Load a checkpoint; return the epoch to start at and the history so far."""
        for name, module in self.modules.items():
            unwrap(module).load_state_dict(state["modules"][name])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        return int(state["epoch"]) + 1, list(state["history"])


def assigned_cpus() -> int:
    """CPUs Ray gave this worker (Ray Train: 1), at least 1."""
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    return max(1, int(cpus))


def context(seed: int, cpu_threads: int | None = None) -> tuple[int, int, torch.device]:
    """``(rank, world_size, device)`` of this worker, with torch seeded by ``seed``.

    torch's CPU threads are the run's ``cpu_threads``, else the worker's assigned CPUs, never
    left to the environment: Ray sets ``OMP_NUM_THREADS`` to the worker's CPUs only when the
    caller has not set it, and a different thread count sums in a different order, so the same
    run would train other weights depending on the shell it was started from.
    """
    train_context = ray.train.get_context()
    torch.set_num_threads(cpu_threads or assigned_cpus())
    torch.manual_seed(seed)
    return train_context.get_world_rank(), train_context.get_world_size(), worker_device()


def run_epochs(
    trainable: Trainable,
    epochs: int,
    rank: int,
    one_epoch: Callable[[int], dict[str, float]],
) -> None:
    """Train epochs ``start..epochs-1``, resuming after the last checkpoint if there is one.

    ``one_epoch(epoch)`` trains one epoch and returns its metrics (summed over workers); each
    epoch is reported with ``epoch``, ``resumed_from_epoch`` and ``cpu_threads`` (torch's)
    added, and rank 0 saves the checkpoint, so a restarted worker group goes on at the next
    epoch.
    """
    start, history = 0, []
    state = load_checkpoint_state()
    if state is not None:
        start, history = trainable.restore(state)
    board = progress_board() if rank == 0 else None
    post(board, {"kind": "resume", "epoch": start})
    for epoch in range(start, epochs):
        _ARMED[:] = [(board, epoch)] if board is not None else []
        metrics = one_epoch(epoch)
        metrics["epoch"] = epoch
        metrics["resumed_from_epoch"] = start
        metrics["cpu_threads"] = torch.get_num_threads()
        history.append(metrics)
        report(dict(metrics), trainable.state(epoch, history), rank)
        post(board, {"kind": "epoch", "epoch": epoch, "metrics": dict(metrics)})


def progress_board() -> Any | None:
    """The driver's progress actor of this run, or ``None`` when the driver shows none."""
    name = BOARD_PREFIX + ray.train.get_context().get_experiment_name()
    try:
        return ray.get_actor(name, namespace=BOARD_NAMESPACE)
    except ValueError:
        return None


def post(board: Any | None, event: dict[str, Any]) -> None:
    """Send one progress event to the driver without waiting (nothing without a board)."""
    if board is not None:
        board.post.remote(event)


def model_state(state: dict[str, Any]) -> dict[str, Any]:
    """The networks' state dicts of a checkpoint (what a run's ``model.pt`` holds)."""
    return dict(state["modules"])


def read_checkpoint(checkpoint: ray.train.Checkpoint) -> dict[str, Any]:
    """The state saved in a reported checkpoint (on the driver, after training)."""
    with checkpoint.as_directory() as folder:
        return torch.load(Path(folder) / CHECKPOINT_STATE, map_location="cpu", weights_only=False)


def load_checkpoint_state() -> dict[str, Any] | None:
    """Return the state dict of the latest reported checkpoint (after a restart), else None."""
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return None
    return read_checkpoint(checkpoint)


def report(metrics: dict[str, Any], state: dict[str, Any] | None, rank: int) -> None:
    """Report epoch metrics from every worker; rank 0 also saves ``state`` as the checkpoint."""
    if rank != 0 or state is None:
        ray.train.report(metrics)
        return
    with tempfile.TemporaryDirectory() as folder:
        torch.save(state, Path(folder) / CHECKPOINT_STATE)
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))


def batches_on_device(
    stream: Any, epoch: int, rank: int, world_size: int, steps: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor, list[str]]]:
    """Iterate a stream shard, yielding (patterns, labels, material ids) on ``device``.

    The first pass of an epoch (its training pass, not validation) posts each finished step
    to the progress actor armed by :func:`run_epochs`.
    """
    board = _ARMED.pop()[0] if _ARMED and _ARMED[-1][1] == epoch else None
    batches = stream.batches(epoch=epoch, rank=rank, world_size=world_size, steps=steps)
    for step, (patterns, labels, mids) in enumerate(batches):
        yield to_device(patterns, device), labels.to(device), list(mids)
        post(board, {"kind": "step", "epoch": epoch, "step": step + 1,
                     "images": len(labels) * world_size})  # fmt: skip
