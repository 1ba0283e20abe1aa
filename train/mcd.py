"""Maximum Classifier Discrepancy domain adaptation on Ray Train (Yan et al. 2025 protocol).

Source: simulated patterns from the stream (default and random-B variants), labelled. Target:
unlabelled experimental patterns (top-N per phase by image quality, ``train.experimental``).
Generator ResNet50, two one-layer heads, Adam lr 2e-4, batch 128, 20 epochs, n = 4 generator
steps per mini-batch (``train.mcd_steps``). K runs with different seeds form an ensemble whose
majority vote ``train.evaluate`` reports per material and overall.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from train import worker
from train.experimental import TargetSet, TargetSpec, load_target_set
from train.mcd_steps import make_optimizers, mcd_step
from train.models import build_mcd_networks
from train.run_config import StreamedRunConfig
from train.supervised import RunResult, steps_for, stream_config_for
from train.training_errors import TrainingError

TARGET_PREDICTIONS_FILE = "target_predictions.json"


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
    """Per-worker MCD loop: steps A, B, C per mini-batch; checkpoint and report every epoch."""
    import ray
    import ray.train

    config: MCDConfig = loop["config"]
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    device = worker.worker_device()
    torch.manual_seed(config.seed)
    target = torch.from_numpy(ray.get(loop["target_ref"]))

    nets = build_mcd_networks(loop["num_classes"], config.arch, config.weights_path)
    generator = worker.prepare(nets.generator, device)
    head1 = worker.prepare(nets.head1, device)
    head2 = worker.prepare(nets.head2, device)
    optimizers = make_optimizers(generator, head1, head2, config.lr)
    history: list[dict[str, float]] = []
    start_epoch = 0
    state = worker.load_checkpoint_state()
    if state is not None:
        for name, module in (("generator", generator), ("head1", head1), ("head2", head2)):
            worker.unwrap(module).load_state_dict(state[name])
        optimizers.generator.load_state_dict(state["opt_generator"])
        optimizers.heads.load_state_dict(state["opt_heads"])
        history, start_epoch = state["history"], state["epoch"] + 1

    def precision():
        return worker.precision_context(device)

    for epoch in range(start_epoch, config.epochs):
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
                generator, head1, head2, optimizers, source, labels, target_batch,
                config.repeats, precision,
            )  # fmt: skip
            sums += [losses["source_ce"], losses["heads_loss"], losses["discrepancy"], 1]
        elapsed = time.perf_counter() - started
        totals = worker.sum_across_workers([*sums.tolist(), elapsed], device)
        n = max(totals[3], 1)
        metrics = {
            "epoch": epoch,
            "source_ce": totals[0] / n,
            "heads_loss": totals[1] / n,
            "discrepancy": totals[2] / n,
            "images_per_s": n * config.batch_size / max(totals[4] / world, 1e-9),
            "resumed_from_epoch": start_epoch,
        }
        history.append(metrics)
        checkpoint = {
            "generator": worker.unwrap(generator).state_dict(),
            "head1": worker.unwrap(head1).state_dict(),
            "head2": worker.unwrap(head2).state_dict(),
            "opt_generator": optimizers.generator.state_dict(),
            "opt_heads": optimizers.heads.state_dict(),
            "epoch": epoch,
            "history": history,
        }
        worker.report(dict(metrics), checkpoint, rank)


@torch.no_grad()
def predict_mcd(state: dict[str, Any], num_classes: int, arch: str, patterns: torch.Tensor):
    """Class probabilities (N, C) of an MCD model: the mean of both heads' softmax outputs."""
    nets = build_mcd_networks(num_classes, arch)
    for name, module in nets.modules().items():
        module.load_state_dict(state[name])
        module.eval()
    probabilities = []
    for chunk in torch.split(patterns, 64):
        features = nets.generator(chunk)
        p1 = torch.softmax(nets.head1(features), 1)
        p2 = torch.softmax(nets.head2(features), 1)
        probabilities.append((p1 + p2) / 2)
    return torch.cat(probabilities)


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

    An unfinished run with the same settings resumes from its last checkpoint; a run with other
    settings is refused before anything is written (``train.runs.check_run_settings``).

    Parameters
    ----------
    lake_url, storage_options
        The existing lake with the source materials' masters; the run is written there.
    source_ids
        Simulated (labelled) materials.
    targets
        Target sources (``PATH[=LABEL]``) or an already prepared :class:`TargetSet`.
    config
        :class:`MCDConfig`.
    run_id
        Run folder name.
    ray_address
        Ray cluster to join; ``None`` starts or reuses a local runtime.
    reuse_finished
        A run that already finished with the same settings is read back instead of trained
        (``True``), or refused as already existing (``False``).

    Returns
    -------
    RunResult
        ``history`` holds per-epoch ``source_ce``, ``heads_loss``, ``discrepancy``.
    """
    import ray

    from infra.ray_runtime import ensure_ray
    from train import runs
    from train.launch import run_on_ray_train
    from train.preprocess import PreprocessConfig
    from train.stream import PatternStream
    from train.supervised import stored_result

    config.validate()
    if not source_ids:
        raise TrainingError(f"MCD run {run_id!r}: no source materials given")
    target_set = (
        targets
        if isinstance(targets, TargetSet)
        else load_target_set(list(targets), config.top_n, PreprocessConfig(), config.image_size)
    )
    lake = runs.open_lake(lake_url, storage_options, mode="a")
    stream = PatternStream(
        lake_url, storage_options, list(source_ids), stream_config_for(config, True)
    )
    classes = list(stream.classes)
    if len(classes) < 2:
        raise TrainingError(f"MCD run {run_id!r}: label {config.label!r} has {len(classes)} class")
    run_config = mcd_run_config(config, lake_url, source_ids, target_set.sources)
    if runs.check_run_settings(lake, run_id, run_config, classes) == "finished":
        if not reuse_finished:
            runs.refuse_finished(lake, run_id)
        return stored_result(lake, run_id)
    ensure_ray(ray_address)
    loop = {
        "config": config,
        "stream": stream,
        "num_classes": len(classes),
        "target_ref": ray.put(target_set.patterns.numpy()),
        "steps_per_epoch": config.steps_per_epoch
        or steps_for(
            len(source_ids), config.patterns_per_material, config.batch_size, config.num_workers
        ),
    }
    runs.put_json(lake, run_id, runs.CONFIG_FILE, run_config)
    runs.put_json(lake, run_id, runs.CLASSES_FILE, classes)
    result = run_on_ray_train(
        mcd_worker, loop, lake, run_id, config.num_workers, config.use_gpu,
        config.max_failures, ray_address,
    )  # fmt: skip
    with result.checkpoint.as_directory() as folder:
        state = torch.load(
            f"{folder}/{worker.CHECKPOINT_STATE}", map_location="cpu", weights_only=False
        )
    model_state = {name: state[name] for name in ("generator", "head1", "head2")}
    runs.put_json(lake, run_id, runs.METRICS_FILE, {"history": state["history"]})
    probabilities = predict_mcd(model_state, len(classes), config.arch, target_set.patterns)
    runs.put_json(
        lake,
        run_id,
        TARGET_PREDICTIONS_FILE,
        {
            "predicted": [classes[i] for i in probabilities.argmax(1).tolist()],
            "labels": target_set.labels,
            "sources": target_set.sources,
        },
    )
    runs.put_model(lake, run_id, model_state)  # last: a run with a model is finished
    return RunResult(run_id, classes, state["history"], list(source_ids), [])


def mcd_run_config(
    config: MCDConfig, lake_url: str, source_ids: list[str], target_sources: list[str]
) -> dict[str, Any]:
    """What ``config.json`` of an MCD run holds (compared when a run is trained again)."""
    return {
        "kind": "mcd",
        "config": dataclasses.asdict(config),
        "train_ids": list(source_ids),
        "test_ids": [],
        "targets": sorted(set(target_sources)),
        "lake_url": lake_url,
    }


def ensemble_run_ids(run_id: str, runs: int) -> list[str]:
    """The runs of an ensemble: ``<run_id>-r00``, ``<run_id>-r01``..."""
    return [f"{run_id}-r{k:02d}" for k in range(runs)]


def check_ensemble(
    lake,
    run_id: str,
    runs: int,
    config: MCDConfig,
    source_ids: list[str],
    target_sources: list[str],
) -> None:
    """Refuse an ensemble whose runs all finished, or whose existing runs have other settings.

    Cheap (reads run files only), so the CLI calls it before starting Ray. Finished runs with
    the same settings are read back by :func:`train_mcd_ensemble`, unfinished ones resumed.
    """
    from train.runs import check_run_settings, run_folder

    if runs < 1:
        raise TrainingError(f"--runs {runs}: must be >= 1")
    config.validate()
    members = ensemble_run_ids(run_id, runs)
    statuses = [
        check_run_settings(
            lake,
            member,
            mcd_run_config(
                config.refine(seed=config.seed + k), lake.url, source_ids, target_sources
            ),
        )
        for k, member in enumerate(members)
    ]
    if all(status == "finished" for status in statuses):
        shown = ", ".join(members[:3]) + (" ..." if runs > 3 else "")
        raise TrainingError(
            f"run {run_id!r} already exists in {lake.url} ({shown} finished); choose another "
            f"--run-id or remove them ({run_folder(lake, members[0])} ...)"
        )


def train_mcd_ensemble(
    lake_url: str,
    storage_options: dict | None,
    source_ids: list[str],
    targets: list[TargetSpec] | TargetSet,
    config: MCDConfig,
    run_id: str,
    runs: int = 30,
    ray_address: str | None = None,
) -> list[RunResult]:
    """Train ``runs`` MCD models (seeds ``seed + k``) as runs ``<run_id>-r<k>`` (paper: 30).

    The target set is read once and shared; ``train.evaluate.ensemble_vote`` combines the runs.
    An ensemble whose runs all finished is refused (:func:`check_ensemble`); after an
    interruption, finished runs are read back and the unfinished one resumed.
    """
    from train.preprocess import PreprocessConfig
    from train.runs import open_lake

    if runs < 1:
        raise TrainingError(f"MCD ensemble {run_id!r}: runs={runs} must be >= 1")
    target_set = (
        targets
        if isinstance(targets, TargetSet)
        else load_target_set(list(targets), config.top_n, PreprocessConfig(), config.image_size)
    )
    lake = open_lake(lake_url, storage_options)
    check_ensemble(lake, run_id, runs, config, list(source_ids), target_set.sources)
    return [
        train_mcd(
            lake_url,
            storage_options,
            source_ids,
            target_set,
            config.refine(seed=config.seed + k),
            member,
            ray_address,
        )  # fmt: skip
        for k, member in enumerate(ensemble_run_ids(run_id, runs))
    ]
