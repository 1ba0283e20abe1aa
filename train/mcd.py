"""Maximum Classifier Discrepancy domain adaptation: its settings and per-worker loop.

Source: simulated patterns from the stream (default and random-B variants), labelled. Target:
unlabelled experimental patterns (top-N per phase by image quality,
``train.patterns.experimental``). Generator ResNet50, two one-layer heads, Adam lr 2e-4, batch
128, 20 epochs, n = 4 generator steps per mini-batch (``train.mcd_steps``). The run's life cycle
is the shared driver's (``train.runs.training``); the 30-run ensemble and its vote are
``train.runs.mcd_ensemble``'s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from train import worker
from train.errors import TrainingError
from train.mcd_steps import make_optimizers, mcd_step
from train.models import build_mcd_networks
from train.run_config import StreamedRunConfig


@dataclass(frozen=True)
class MCDConfig(StreamedRunConfig):
    """Settings of one MCD run (the paper's values are the defaults).

    The stream, scaling and model fields are :class:`train.run_config.StreamedRunConfig`'s, with
    the paper's MCD values: ``arch`` ResNet50, 20 epochs, ``lr`` 2e-4 (Adam, generator and
    heads); ``variants`` should list the default and the random-B variants. MCD adds:

    Attributes
    ----------
    repeats
        Generator steps per mini-batch in step C (paper: n = 4).
    top_n
        Target patterns kept per phase (source file) by image quality (paper: 100).
    """

    arch: str = "resnet50"
    epochs: int = 20
    lr: float = 2e-4
    repeats: int = 4
    top_n: int | None = 100

    def validate(self) -> None:
        """Raise :class:`TrainingError` naming the first bad field."""
        positive = ("epochs", "batch_size", "patterns_per_material", "repeats", "num_workers")
        self.check_positive(positive, "MCD config")
        if self.top_n is not None and self.top_n < 1:
            raise TrainingError(f"MCD config top_n={self.top_n}: must be >= 1")


def _target_batch(target: torch.Tensor, size: int, epoch: int, step: int, rank: int, seed: int):
    """Draw ``size`` target patterns (with replacement), reproducibly per (seed, epoch, step, rank)."""
    generator = torch.Generator().manual_seed(hash((seed, epoch, step, rank)) % (2**63))
    return target[torch.randint(len(target), (size,), generator=generator)]


def mcd_worker(loop: dict[str, Any]) -> None:
    """Per-worker MCD loop: steps A, B, C per mini-batch, resumed and checkpointed by
    :func:`train.worker.run_epochs`."""
    import ray

    config: MCDConfig = loop["config"]
    rank, world, device = worker.context(config.seed, config.cpu_threads)
    target = torch.from_numpy(ray.get(loop["target_ref"]))
    nets = build_mcd_networks(loop["num_classes"], config.arch, config.weights_path)
    modules = {name: worker.prepare(m, device) for name, m in nets.modules().items()}
    optimizers = make_optimizers(
        modules["generator"], modules["head1"], modules["head2"], config.lr
    )
    trainable = worker.Trainable(
        modules, {"generator": optimizers.generator, "heads": optimizers.heads}
    )

    def precision():
        return worker.precision_context(device)

    def one_epoch(epoch: int) -> dict[str, float]:
        sums = np.zeros(4)
        started = time.perf_counter()
        batches = worker.batches_on_device(
            loop["stream"], epoch, rank, world, loop["steps_per_epoch"], device
        )
        for step, (source, labels, _) in enumerate(batches):
            worker.maybe_fail(config.fault, rank, epoch, step)
            target_batch = _target_batch(target, len(labels), epoch, step, rank, config.seed)
            target_batch = worker.to_device(target_batch, device)
            losses = mcd_step(
                modules["generator"], modules["head1"], modules["head2"], optimizers, source,
                labels, target_batch, config.repeats, precision,
            )  # fmt: skip
            sums += [losses["source_ce"], losses["heads_loss"], losses["discrepancy"], 1]
        elapsed = time.perf_counter() - started
        totals = worker.sum_across_workers([*sums.tolist(), elapsed], device)
        n = max(totals[3], 1)
        return {
            "source_ce": totals[0] / n,
            "heads_loss": totals[1] / n,
            "discrepancy": totals[2] / n,
            "images_per_s": n * config.batch_size / max(totals[4] / world, 1e-9),
        }

    worker.run_epochs(trainable, config.epochs, rank, one_epoch)
