"""The training worker's torch threads follow the CPUs Ray gave it, not the caller's shell.

Ray sets ``OMP_NUM_THREADS`` in a worker to its CPUs only when the caller has not set it; a
thread count from the shell would sum in another order and train other weights from the same
run settings (found when a from-scratch cubic-lab build started with ``OMP_NUM_THREADS=2`` did
not reproduce the shipped weights).
"""

from __future__ import annotations

import os

import pytest

from train.runs.training import train_supervised
from train.supervised import SupervisedConfig

pytest_plugins = ("training_fixtures",)  # session fixtures: one tiny lake per run

TINY = SupervisedConfig(
    arch="resnet10", epochs=1, image_size=32, detector_shape=(32, 32), batch_size=8,
    steps_per_epoch=2, num_workers=1, seed=0,
)  # fmt: skip


@pytest.fixture
def ray_with_two_omp_threads():
    """A local Ray runtime whose workers see ``OMP_NUM_THREADS=2`` (as under ``make``)."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False,
        runtime_env={"env_vars": {"OMP_NUM_THREADS": "2"}},
    )  # fmt: skip
    yield
    ray.shutdown()


def test_worker_threads_are_its_cpus_whatever_the_environment(
    training_lake, ray_with_two_omp_threads
):
    result = train_supervised(
        training_lake.url, {}, training_lake.train_ids, TINY, "threads",
        val_ids=training_lake.test_ids,
    )  # fmt: skip
    threads = [h["cpu_threads"] for h in result.history]
    assert threads == [1], f"a 1-CPU worker must train on 1 torch thread, not {threads}"
