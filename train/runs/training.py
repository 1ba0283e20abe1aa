"""One training driver: the life cycle every run shares, whatever its loop.

``train_run`` checks the run's settings against what the lake holds (a finished run is read
back or refused, an unfinished one resumed), writes ``config.json``, ``classes.json`` and
``reading.json``, runs the loop on Ray Train with checkpoints in the run folder, then writes
``metrics.json``, the loop's own outputs and, last, ``model.pt``. ``train_supervised`` and
``train_mcd`` only build their :class:`TrainingJob`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from train import worker
from train.errors import TrainingError
from train.launch import check_cluster, run_on_ray_train
from train.mcd import MCDConfig, mcd_worker
from train.patterns.experimental import TargetSet, TargetSpec, load_target_set
from train.patterns.stream import PatternStream
from train.run_config import StreamedRunConfig
from train.runs.inference import probability_network
from train.runs.run import (
    CLASSES_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    READING_FILE,
    TARGET_PREDICTIONS_FILE,
    Run,
    RunResult,
    open_lake,
)
from train.supervised import SupervisedConfig, class_index_map, steps_for, supervised_worker


@dataclass
class TrainingJob:
    """What one run trains: its loop, settings and materials.

    Attributes
    ----------
    kind
        ``"supervised"`` or ``"mcd"`` (stored in ``config.json``).
    config
        The run's settings.
    worker_fn
        The per-worker loop (``train.supervised.supervised_worker``, ``train.mcd.mcd_worker``).
    loop
        Picklable arguments of ``worker_fn`` (streams, step counts...); ``config``,
        ``num_classes`` and ``steps_per_epoch`` are added by the driver.
    stream
        The training stream (its classes are the run's classes).
    train_ids, val_ids, test_ids
        Materials trained on, validated on each epoch, and held out for ``evaluate``.
    extra
        More ``config.json`` keys (MCD: its target sources).
    finish
        Writes the loop's own outputs from the final model state (MCD: target predictions).
    launch
        More loop arguments, made only once Ray is up and the run is really trained (MCD: the
        target patterns put in Ray's object store), so a finished run costs none of it.
    """

    kind: str
    config: StreamedRunConfig
    worker_fn: Callable[[dict[str, Any]], None]
    stream: PatternStream
    train_ids: list[str]
    val_ids: list[str] = field(default_factory=list)
    test_ids: list[str] = field(default_factory=list)
    loop: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    finish: Callable[[Run, list, dict[str, Any]], None] | None = None
    launch: Callable[[], dict[str, Any]] | None = None

    def run_config(self, lake_url: str) -> dict[str, Any]:
        """What ``config.json`` holds (compared when a run is trained again)."""
        return run_config_of(
            self.kind, self.config, lake_url, self.train_ids, self.val_ids, self.test_ids,
            self.extra,
        )  # fmt: skip


def run_config_of(
    kind: str,
    config: StreamedRunConfig,
    lake_url: str,
    train_ids: list[str],
    val_ids: list[str] | None = None,
    test_ids: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``config.json`` of a run of ``kind``: settings, materials and the lake it trained on."""
    return {
        "kind": kind,
        "config": dataclasses.asdict(config),
        "train_ids": list(train_ids),
        "val_ids": list(val_ids or []),
        "test_ids": list(test_ids or []),
        "lake_url": lake_url,
        **(extra or {}),
    }


def train_run(
    lake_url: str,
    storage_options: dict | None,
    job: TrainingJob,
    run_id: str,
    ray_address: str | None = None,
    reuse_finished: bool = True,
) -> RunResult:
    """Train ``job`` as run ``run_id`` on Ray Train, resuming an interrupted run.

    A run that finished with the same settings is read back (``reuse_finished``) or refused;
    a run with other settings is refused before anything is written. A cluster without the
    GPUs or CPUs the workers need is refused before training starts; progress goes to the
    listener of ``train.launch.progress_to``; Ctrl-C raises ``train.launch.TrainingInterrupted``
    and leaves the run unfinished (training it again resumes from its last checkpoint).
    """
    config = job.config
    lake = open_lake(lake_url, storage_options, mode="a")
    run = Run(lake, run_id)
    classes = list(job.stream.classes)
    if len(classes) < 2:
        raise TrainingError(f"run {run_id!r}: label {config.label!r} has {len(classes)} class(es)")
    run_config = job.run_config(lake_url)
    if run.check_settings(run_config, classes) == "finished":
        if not reuse_finished:
            run.refuse_finished()
        return run.result()
    loop = {
        **job.loop,
        "config": config,
        "stream": job.stream,
        "num_classes": len(classes),
        "steps_per_epoch": config.steps_per_epoch
        or steps_for(
            len(job.train_ids),
            config.patterns_per_material,
            config.batch_size,
            config.num_workers,
        ),  # fmt: skip
    }
    check_cluster(run_id, config.num_workers, config.use_gpu, ray_address)
    if job.launch is not None:
        loop.update(job.launch())
    run.put_json(CONFIG_FILE, run_config)
    run.put_json(CLASSES_FILE, classes)
    run.put_json(READING_FILE, config.reading(classes).to_dict())
    result = run_on_ray_train(
        job.worker_fn, loop, run.storage(), run_id, config.num_workers, config.use_gpu,
        config.max_failures, ray_address, epochs=config.epochs,
        steps_per_epoch=loop["steps_per_epoch"],
    )  # fmt: skip
    state = worker.read_checkpoint(result.checkpoint)
    model_state = worker.model_state(state)
    run.put_json(METRICS_FILE, {"history": state["history"]})
    if job.finish is not None:
        job.finish(run, classes, model_state)
    run.put_model(model_state)  # last: a run with a model is finished
    return RunResult(run_id, classes, state["history"], list(job.train_ids), list(job.val_ids))


def _check_materials(run_id: str, train_ids: list[str], *others: list[str] | None) -> None:
    """Refuse an empty training set and materials both trained on and held out."""
    if not train_ids:
        raise TrainingError(f"run {run_id!r}: no training materials given")
    overlap = set().union(*(set(train_ids) & set(o or []) for o in others))
    if overlap:
        raise TrainingError(f"run {run_id!r}: materials in train and test: {sorted(overlap)[:5]}")


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

    Parameters
    ----------
    lake_url, storage_options
        The existing lake (any fsspec URL) with masters and structures; the run goes there.
    train_ids
        Materials to train on.
    config
        :class:`~train.supervised.SupervisedConfig`.
    run_id
        Name of the run folder (``runs/<run_id>``).
    val_ids
        Optional materials validated after each epoch (a k-fold split).
    test_ids
        Optional held-out materials, recorded in ``config.json`` for ``evaluate``.
    ray_address
        Ray cluster to join; ``None`` starts or reuses a local runtime.
    reuse_finished
        Read back a run that finished with the same settings (``True``) or refuse it.
    """
    config.validate()
    _check_materials(run_id, train_ids, val_ids, test_ids)
    stream = PatternStream(lake_url, storage_options, list(train_ids), config.stream_config(True))
    job = TrainingJob(
        "supervised", config, supervised_worker, stream, list(train_ids), list(val_ids or []),
        list(test_ids or []),
    )  # fmt: skip
    if val_ids:
        val_stream = PatternStream(
            lake_url, storage_options, list(val_ids), config.stream_config(False)
        )
        job.loop = {
            "val_stream": val_stream,
            "val_class_map": class_index_map(list(stream.classes), list(val_stream.classes)),
            "val_steps": steps_for(
                len(val_ids),
                config.val_patterns_per_material,
                config.batch_size,
                config.num_workers,
            ),  # fmt: skip
        }
    return train_run(lake_url, storage_options, job, run_id, ray_address, reuse_finished)


def target_set_for(targets: list[TargetSpec] | TargetSet, config: StreamedRunConfig) -> TargetSet:
    """The MCD target set, read with the run's pre-processing and input size."""
    if isinstance(targets, TargetSet):
        return targets
    return load_target_set(list(targets), config.top_n, config.preprocess, config.image_size)


def train_mcd(
    lake_url: str,
    storage_options: dict | None,
    source_ids: list[str],
    targets: list[TargetSpec] | TargetSet,
    config: MCDConfig,
    run_id: str,
    ray_address: str | None = None,
    reuse_finished: bool = True,
) -> RunResult:
    """Train one MCD model on Ray Train and store it, with its target predictions, as a run.

    ``source_ids`` are the simulated (labelled) materials; ``targets`` the target sources
    (``PATH[=LABEL]``) or a prepared :class:`TargetSet`, read with the run's pre-processing;
    ``config`` an :class:`~train.mcd.MCDConfig`. The other arguments are
    :func:`train_supervised`'s.
    """
    import ray

    config.validate()
    if not source_ids:
        raise TrainingError(f"MCD run {run_id!r}: no source materials given")
    target_set = target_set_for(targets, config)
    stream = PatternStream(lake_url, storage_options, list(source_ids), config.stream_config(True))

    def finish(run: Run, classes: list, model_state: dict[str, Any]) -> None:
        network = probability_network("mcd", config.arch, len(classes), model_state)
        with torch.no_grad():
            probabilities = torch.cat([network(p) for p in torch.split(target_set.patterns, 64)])
        run.put_json(
            TARGET_PREDICTIONS_FILE,
            {
                "predicted": [classes[i] for i in probabilities.argmax(1).tolist()],
                "labels": target_set.labels,
                "sources": target_set.sources,
            },
        )

    def launch() -> dict[str, Any]:
        return {"target_ref": ray.put(target_set.patterns.numpy())}

    job = TrainingJob(
        "mcd", config, mcd_worker, stream, list(source_ids),
        extra={"targets": sorted(set(target_set.sources))}, finish=finish, launch=launch,
    )  # fmt: skip
    return train_run(lake_url, storage_options, job, run_id, ray_address, reuse_finished)
