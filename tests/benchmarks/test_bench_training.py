"""Benchmark: images/s through stream + Ray Train vs a bare PyTorch loop (same model, device).

Run: ``OMP_NUM_THREADS=1 .venv/bin/pytest tests/benchmarks/test_bench_training.py -s -q``.
The ratio is printed and recorded in docs/PERFORMANCE.md ("Training"); nothing is asserted on
time, only that both measurements happened and are positive.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import torch

from train.runs.training import train_supervised
from train.supervised import SupervisedConfig

_KIT_BENCH = Path(__file__).resolve().parents[2] / "devtools" / "gpu_kit" / "bench_training.py"
_spec = importlib.util.spec_from_file_location("gpu_kit_bench_training", _KIT_BENCH)
_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_bench)
bare_loop_images_per_s = _bench.bare_loop_images_per_s  # the GPU kit's bare loop, on CPU here

ARCH, SIZE, BATCH, STEPS = "resnet18", 64, 32, 12

pytest_plugins = ("training_fixtures",)  # session fixtures: one tiny lake per run


def test_stream_plus_ray_train_vs_bare_loop_on_cpu(training_lake, ray_two_cpus):
    config = SupervisedConfig(
        arch=ARCH, epochs=2, image_size=SIZE, detector_shape=(SIZE, SIZE), batch_size=BATCH,
        steps_per_epoch=STEPS, num_workers=1, augment=False,
    )  # fmt: skip
    result = train_supervised(training_lake.url, {}, training_lake.train_ids, config, "bench")
    pipeline = result.history[-1]["images_per_s"]  # second epoch: masters cached, warm
    torch.set_num_threads(1)  # a Ray worker with 1 CPU runs torch on 1 thread
    bare = bare_loop_images_per_s(ARCH, 3, BATCH, SIZE, STEPS, "cpu")
    ratio = pipeline / bare
    print(
        f"\n[bench training] cpu {ARCH} {SIZE}px batch {BATCH}: stream+RayTrain "
        f"{pipeline:.1f} img/s, bare loop {bare:.1f} img/s, ratio {ratio:.3f}"
    )
    assert math.isfinite(ratio) and ratio > 0


def test_recipe_training_vs_bare_loop_on_cpu(training_lake, ray_two_cpus):
    """The shipped recipe's training settings (lab detector, PC range, degradations, crop and
    flips, 72 px renders resized to 65 and cropped to 64) against the bare loop of the same network."""
    from infra.app.recipes import recipe

    lab = recipe("cubic-lab").training
    config = lab.refine(epochs=2, steps_per_epoch=STEPS, num_workers=1, patterns_per_material=1)
    result = train_supervised(training_lake.url, {}, training_lake.train_ids, config, "bench-lab")
    pipeline = result.history[-1]["images_per_s"]
    torch.set_num_threads(1)
    bare = bare_loop_images_per_s(lab.arch, 3, lab.batch_size, lab.image_size, STEPS, "cpu")
    ratio = pipeline / bare
    print(
        f"\n[bench training] recipe cubic-lab ({lab.arch} {lab.image_size}px batch "
        f"{lab.batch_size}): stream+RayTrain {pipeline:.1f} img/s, bare loop {bare:.1f} img/s, "
        f"ratio {ratio:.3f}"
    )
    assert math.isfinite(ratio) and ratio > 0


def test_model_build_wall_time_by_stage(tmp_path, ray_two_cpus):
    """``model build tiny`` end to end: the wall time of each stage, as the card records it."""
    import json

    from infra.app.cli import main

    lake, models = tmp_path / "lake.zarr", tmp_path / "models"
    assert main(["--lake", str(lake), "model", "build", "tiny", "--out", str(models)]) == 0
    seconds = json.loads((models / "tiny" / "card.json").read_text())["build"]["stage_seconds"]
    total = sum(seconds.values())
    shares = ", ".join(
        f"{stage} {value:.1f} s ({value / total:.0%})" for stage, value in seconds.items()
    )
    print(f"\n[bench build] model build tiny: {shares}; total {total:.1f} s")
    assert all(value >= 0 for value in seconds.values()) and total > 0
