"""Supervised space-group classification on Ray Train (the paper's ResNet18 protocol).

Defaults follow Yan et al. 2025: ResNet18, SGD (lr 1e-3, momentum 0.9), learning rate x0.9
every 7 epochs, 10 epochs, disordered space group as the label. Patterns come from
``train.stream.PatternStream``; each Ray Train worker reads its own shard of every epoch. Rank 0
writes a checkpoint after each epoch, so a restarted worker group resumes at the next epoch.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from train import worker
from train.models import build_classifier
from train.run_config import StreamedRunConfig
from train.targets import label_attribute
from train.training_errors import TrainingError

PAPER_RESIZE, PAPER_CROP = 229, 224
"""The paper resized patterns to 229 px and cropped 224 px at random while training."""


@dataclass(frozen=True)
class SupervisedConfig(StreamedRunConfig):
    """Settings of one supervised run (the paper's values are the defaults).

    The stream, scaling and model fields are :class:`train.run_config.StreamedRunConfig`'s
    (ResNet18, 10 epochs, batch 128, 224 px, lr 1e-3); SGD adds:

    Attributes
    ----------
    momentum, lr_step_epochs, lr_gamma
        SGD momentum and the StepLR schedule (x``lr_gamma`` every ``lr_step_epochs`` epochs).
    val_patterns_per_material
        Validation projections per held-out material and epoch (k-fold runs).
    """

    momentum: float = 0.9
    lr_step_epochs: int = 7
    lr_gamma: float = 0.9
    val_patterns_per_material: int = 20

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


@dataclass
class RunResult:
    """What a finished training run produced.

    Attributes
    ----------
    run_id
        Folder name under ``runs/``.
    classes
        Label values in logit order.
    history
        One dict per epoch: ``epoch``, ``loss``, ``train_accuracy``, ``lr``, ``images_per_s``,
        and ``val_accuracy`` when validation materials were given.
    train_ids, val_ids
        Materials trained on and validated on.
    """

    run_id: str
    classes: list
    history: list[dict[str, float]]
    train_ids: list[str]
    val_ids: list[str]

    @property
    def final(self) -> dict[str, float]:
        """Metrics of the last epoch."""
        return self.history[-1] if self.history else {}


def stream_config_for(config: SupervisedConfig, training: bool):
    """Build the ``StreamConfig`` of a run (augmented for training, plain for evaluation).

    Both deliver ``config.image_size`` pixels: training renders at ``image_size * 229/224`` and
    crops ``image_size`` at random with random flips (the paper: resize 229, crop 224);
    evaluation renders ``image_size`` directly, as ``train.experimental`` resizes experiments.
    """
    from train.augment import AugmentConfig
    from train.detector import Detector
    from train.preprocess import PreprocessConfig
    from train.stream import StreamConfig

    augment = None
    render_size = config.image_size
    if training and config.augment:
        render_size = round(config.image_size * PAPER_RESIZE / PAPER_CROP)
        augment = AugmentConfig(crop_size=config.image_size, flip_ud=True, flip_lr=True)
    return StreamConfig(
        label=label_attribute(config.label),
        detector=Detector.paper(shape=tuple(config.detector_shape)),
        image_size=render_size,
        batch_size=config.batch_size,
        energy=config.energy,
        variants=tuple(config.variants),
        seed=config.seed if training else config.seed + 1_000_003,
        balance=training,
        preprocess=PreprocessConfig(),
        augment=augment,
        device=config.stream_device,
    )


def steps_for(n_materials: int, per_material: int, batch_size: int, world_size: int) -> int:
    """Optimiser steps per worker so an epoch sees about ``n_materials * per_material`` images."""
    return max(1, math.ceil(n_materials * per_material / (batch_size * world_size)))


def class_index_map(train_classes: list, other_classes: list) -> list[int]:
    """Map another stream's class indices to the training classes (-1: unseen in training)."""
    lookup = {value: i for i, value in enumerate(train_classes)}
    return [lookup.get(value, -1) for value in other_classes]


def supervised_worker(loop: dict[str, Any]) -> None:
    """Per-worker loop: build ResNet, resume from a checkpoint if any, train and report."""
    import ray.train

    config: SupervisedConfig = loop["config"]
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    device = worker.worker_device()
    torch.manual_seed(config.seed)

    model = build_classifier(loop["num_classes"], config.arch, config.weights_path)
    model = worker.prepare(model, device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, config.lr_step_epochs, config.lr_gamma)
    history: list[dict[str, float]] = []
    start_epoch = 0
    state = worker.load_checkpoint_state()
    if state is not None:
        worker.unwrap(model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = state["history"]
        start_epoch = state["epoch"] + 1

    steps = loop["steps_per_epoch"]
    for epoch in range(start_epoch, config.epochs):
        metrics = _train_one_epoch(model, optimizer, loop, epoch, rank, world, steps, device)
        metrics["lr"] = optimizer.param_groups[0]["lr"]
        scheduler.step()
        if loop.get("val_stream") is not None:
            metrics["val_accuracy"] = _validate(model, loop, rank, world, device)
        metrics["epoch"] = epoch
        metrics["resumed_from_epoch"] = start_epoch
        history.append(metrics)
        checkpoint = {
            "model": worker.unwrap(model).state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "epoch": epoch,
            "history": history,
        }
        worker.report(dict(metrics), checkpoint, rank)


def _train_one_epoch(model, optimizer, loop, epoch, rank, world, steps, device) -> dict[str, float]:
    """One epoch over this worker's shard; returns metrics summed over all workers."""
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    loss_sum = correct = seen = 0.0
    started = time.perf_counter()
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


def train_supervised(
    lake_url: str,
    storage_options: dict | None,
    train_ids: list[str],
    config: SupervisedConfig,
    run_id: str,
    val_ids: list[str] | None = None,
    test_ids: list[str] | None = None,
    ray_address: str | None = None,
    reuse_finished: bool = True,
) -> RunResult:
    """Train a classifier on ``train_ids`` with Ray Train and store it as run ``run_id``.

    An unfinished run with the same settings resumes from its last checkpoint; a run with other
    settings is refused before anything is written (``train.runs.check_run_settings``).

    Parameters
    ----------
    lake_url, storage_options
        The existing lake (any fsspec URL) holding masters and structures; the run is written
        there.
    train_ids
        Materials to train on.
    config
        :class:`SupervisedConfig`.
    run_id
        Name of the run folder (``runs/<run_id>``).
    val_ids
        Optional materials validated after each epoch (a k-fold split).
    test_ids
        Optional held-out materials, recorded in ``config.json`` for ``evaluate``.
    ray_address
        Ray cluster to join; ``None`` starts or reuses a local runtime.
    reuse_finished
        A run that already finished with the same settings is read back instead of trained
        (``True``), or refused as already existing (``False``).

    Returns
    -------
    RunResult
    """
    from train import runs
    from train.launch import run_on_ray_train
    from train.stream import PatternStream

    config.validate()
    if not train_ids:
        raise TrainingError(f"run {run_id!r}: no training materials given")
    overlap = set(train_ids) & set(val_ids or []) | set(train_ids) & set(test_ids or [])
    if overlap:
        raise TrainingError(f"run {run_id!r}: materials in train and test: {sorted(overlap)[:5]}")
    lake = runs.open_lake(lake_url, storage_options, mode="a")
    stream = PatternStream(
        lake_url, storage_options, list(train_ids), stream_config_for(config, True)
    )
    classes = list(stream.classes)
    if len(classes) < 2:
        raise TrainingError(f"run {run_id!r}: label {config.label!r} has {len(classes)} class(es)")
    run_config = supervised_run_config(config, lake_url, train_ids, val_ids, test_ids)
    if runs.check_run_settings(lake, run_id, run_config, classes) == "finished":
        if not reuse_finished:
            runs.refuse_finished(lake, run_id)
        return stored_result(lake, run_id)
    loop: dict[str, Any] = {
        "config": config,
        "stream": stream,
        "num_classes": len(classes),
        "steps_per_epoch": config.steps_per_epoch
        or steps_for(
            len(train_ids), config.patterns_per_material, config.batch_size, config.num_workers
        ),
    }
    if val_ids:
        val_stream = PatternStream(
            lake_url, storage_options, list(val_ids), stream_config_for(config, False)
        )
        loop["val_stream"] = val_stream
        loop["val_class_map"] = class_index_map(classes, list(val_stream.classes))
        loop["val_steps"] = steps_for(
            len(val_ids), config.val_patterns_per_material, config.batch_size, config.num_workers
        )
    runs.put_json(lake, run_id, runs.CONFIG_FILE, run_config)
    runs.put_json(lake, run_id, runs.CLASSES_FILE, classes)
    result = run_on_ray_train(
        supervised_worker,
        loop,
        lake,
        run_id,
        num_workers=config.num_workers,
        use_gpu=config.use_gpu,
        max_failures=config.max_failures,
        ray_address=ray_address,
    )
    with result.checkpoint.as_directory() as folder:
        state = torch.load(
            f"{folder}/{worker.CHECKPOINT_STATE}", map_location="cpu", weights_only=False
        )
    history = state["history"]
    runs.put_json(lake, run_id, runs.METRICS_FILE, {"history": history})
    runs.put_model(lake, run_id, {"model": state["model"]})  # last: a run with a model is finished
    return RunResult(run_id, classes, history, list(train_ids), list(val_ids or []))


def supervised_run_config(
    config: SupervisedConfig,
    lake_url: str,
    train_ids: list[str],
    val_ids: list[str] | None = None,
    test_ids: list[str] | None = None,
) -> dict[str, Any]:
    """What ``config.json`` of a supervised run holds (compared when a run is trained again)."""
    return {
        "kind": "supervised",
        "config": dataclasses.asdict(config),
        "train_ids": list(train_ids),
        "val_ids": list(val_ids or []),
        "test_ids": list(test_ids or []),
        "lake_url": lake_url,
    }


def stored_result(lake, run_id: str) -> RunResult:
    """The :class:`RunResult` of a finished run, read back from its files."""
    from train.runs import CLASSES_FILE, CONFIG_FILE, METRICS_FILE, get_json

    stored = get_json(lake, run_id, CONFIG_FILE)
    history = get_json(lake, run_id, METRICS_FILE)
    if not isinstance(history, dict) or not isinstance(history.get("history"), list):
        raise TrainingError(f"run {run_id!r}: {METRICS_FILE} lacks 'history'")
    return RunResult(
        run_id,
        list(get_json(lake, run_id, CLASSES_FILE)),
        history["history"],
        list(stored.get("train_ids") or []),
        list(stored.get("val_ids") or []),
    )
