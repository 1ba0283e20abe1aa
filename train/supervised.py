"""Supervised space-group classification: its settings, optimiser and per-worker loop.

Defaults follow Yan et al. 2025: ResNet18, SGD (lr 1e-3, momentum 0.9), learning rate x0.9
every 7 epochs, 10 epochs, disordered space group as the label. The run's life cycle (run
folder, resume, checkpoints, metrics, failures) is the shared driver's
(``train.runs.training``); this module holds only what is supervised about it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from train import worker
from train.errors import TrainingError
from train.initial_weights import check_initial_weights, load_backbone
from train.models import build_classifier
from train.run_config import StreamedRunConfig

LR_SCHEDULES = ("step", "cosine")
"""Learning-rate schedules a supervised run knows (``SupervisedConfig.lr_schedule``)."""


@dataclass(frozen=True)
class SupervisedConfig(StreamedRunConfig):
    """Settings of one supervised run (the paper's values are the defaults).

    The stream, scaling and model fields are :class:`train.run_config.StreamedRunConfig`'s
    (ResNet18, 10 epochs, batch 128, 224 px, lr 1e-3); SGD adds:

    Attributes
    ----------
    momentum, lr_step_epochs, lr_gamma
        SGD momentum and the StepLR schedule (x``lr_gamma`` every ``lr_step_epochs`` epochs).
    lr_schedule
        ``"step"`` (the paper's StepLR above) or ``"cosine"`` (half a cosine from ``lr`` to 0
        over the run's epochs, stepped per epoch): the last epochs then refine rather than
        jump, so a decision boundary does not depend on where the last step happened to land.
    val_patterns_per_material
        Validation projections per held-out material and epoch (k-fold runs).
    init_from
        A model package (shipped name or folder) whose network, all but its classification
        layer, starts this run (``train.initial_weights``); None: random initialisation.
    """

    momentum: float = 0.9
    lr_step_epochs: int = 7
    lr_gamma: float = 0.9
    lr_schedule: str = "step"
    val_patterns_per_material: int = 20
    init_from: str | None = None

    def validate(self) -> None:
        """Raise :class:`TrainingError` naming the first bad field."""
        positive = (
            "epochs", "batch_size", "patterns_per_material", "num_workers", "lr_step_epochs",
            "val_patterns_per_material",
        )  # fmt: skip
        self.check_positive(positive, "training config")
        if not self.lr_gamma > 0 or not self.momentum >= 0:
            raise TrainingError(
                f"training config lr_gamma={self.lr_gamma}, momentum={self.momentum}: "
                "need lr_gamma > 0 and momentum >= 0"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise TrainingError(
                f"training config lr_schedule={self.lr_schedule!r}: use one of "
                + ", ".join(LR_SCHEDULES)
            )
        if self.init_from is not None:
            check_initial_weights(self.init_from, self.arch)


def steps_for(n_materials: int, per_material: int, batch_size: int, world_size: int) -> int:
    """Optimiser steps per worker so an epoch sees about ``n_materials * per_material`` images."""
    return max(1, math.ceil(n_materials * per_material / (batch_size * world_size)))


def class_index_map(train_classes: list, other_classes: list) -> list[int]:
    """Map another stream's class indices to the training classes (-1: unseen in training)."""
    lookup = {value: i for i, value in enumerate(train_classes)}
    return [lookup.get(value, -1) for value in other_classes]


def supervised_worker(loop: dict[str, Any]) -> None:
    """Per-worker loop: a ResNet with SGD and StepLR, resumed and checkpointed by
    :func:`train.worker.run_epochs`; validates on ``loop["val_stream"]`` when given."""
    config: SupervisedConfig = loop["config"]
    rank, world, device = worker.context(config.seed, config.cpu_threads)
    model = build_classifier(loop["num_classes"], config.arch, config.weights_path)
    if config.init_from is not None:
        load_backbone(model, config.init_from)
    model = worker.prepare(model, device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    scheduler = lr_scheduler(optimizer, config)
    trainable = worker.Trainable({"model": model}, {"optimizer": optimizer, "scheduler": scheduler})

    def one_epoch(epoch: int) -> dict[str, float]:
        metrics = _train_one_epoch(model, optimizer, loop, epoch, rank, world, device)
        metrics["lr"] = optimizer.param_groups[0]["lr"]
        scheduler.step()
        if loop.get("val_stream") is not None:
            metrics["val_accuracy"] = _validate(model, loop, rank, world, device)
        return metrics

    worker.run_epochs(trainable, config.epochs, rank, one_epoch)


def lr_scheduler(optimizer: torch.optim.Optimizer, config: SupervisedConfig) -> Any:
    """The run's per-epoch learning-rate schedule (``config.lr_schedule``)."""
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return torch.optim.lr_scheduler.StepLR(optimizer, config.lr_step_epochs, config.lr_gamma)


def _train_one_epoch(model, optimizer, loop, epoch, rank, world, device) -> dict[str, float]:
    """One epoch over this worker's shard; returns metrics summed over all workers."""
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    loss_sum = correct = seen = 0.0
    started = time.perf_counter()
    steps = loop["steps_per_epoch"]
    batches = worker.batches_on_device(loop["stream"], epoch, rank, world, steps, device)
    for step, (patterns, labels, _) in enumerate(batches):
        worker.maybe_fail(loop["config"].fault, rank, epoch, step)
        with worker.precision_context(device):
            logits = model(patterns)
            loss = loss_fn(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += float(loss.detach()) * len(labels)
        correct += float((logits.argmax(1) == labels).sum())
        seen += len(labels)
    elapsed = time.perf_counter() - started
    loss_sum, correct, seen, elapsed_sum = worker.sum_across_workers(
        [loss_sum, correct, seen, elapsed], device
    )
    return {
        "loss": loss_sum / max(seen, 1),
        "train_accuracy": correct / max(seen, 1),
        "images": seen,
        "images_per_s": seen / max(elapsed_sum / world, 1e-9),
    }


@torch.no_grad()
def _validate(model, loop, rank, world, device) -> float:
    """Accuracy on this epoch's validation shard, summed over workers."""
    model.eval()
    index_map = torch.tensor(loop["val_class_map"], device=device)
    correct = seen = 0.0
    batches = worker.batches_on_device(
        loop["val_stream"], 0, rank, world, loop["val_steps"], device
    )
    for patterns, labels, _ in batches:
        with worker.precision_context(device):
            predicted = model(patterns).argmax(1)
        correct += float((predicted == index_map[labels]).sum())
        seen += len(labels)
    correct, seen = worker.sum_across_workers([correct, seen], device)
    return correct / max(seen, 1)
