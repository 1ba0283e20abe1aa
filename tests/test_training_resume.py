"""Fault tolerance: a Ray Train worker killed mid-run on a local multi-node cluster resumes from
the last checkpoint (the epoch counter continues) and the run finishes."""

from __future__ import annotations

import json

import pytest

from train.runs.run import open_lake
from train.runs.training import train_supervised
from train.supervised import SupervisedConfig

pytest_plugins = ("training_fixtures",)  # session fixtures: one tiny lake per run


@pytest.fixture(scope="module")
def two_node_cluster():
    """A head node and a worker node, one CPU each (ray.cluster_utils.Cluster)."""
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def test_killed_worker_resumes_from_last_checkpoint(training_lake, two_node_cluster, tmp_path):
    marker = tmp_path / "killed.txt"
    config = SupervisedConfig(
        arch="resnet10", epochs=3, image_size=32, detector_shape=(32, 32), batch_size=8,
        steps_per_epoch=3, num_workers=2, max_failures=2,
        fault={"rank": 1, "epoch": 1, "step": 1, "marker": str(marker), "delay_s": 5.0},
    )  # fmt: skip
    result = train_supervised(
        training_lake.url, {}, training_lake.train_ids, config, "resume",
        ray_address=two_node_cluster.address,
    )  # fmt: skip
    assert marker.exists(), "the fault hook never killed rank 1"
    epochs = [h["epoch"] for h in result.history]
    assert epochs == [0, 1, 2]
    resumed = [h["resumed_from_epoch"] for h in result.history]
    assert resumed == [0, 1, 1], "epochs 1-2 must come from a restart at the epoch-0 checkpoint"
    metrics = json.loads(open_lake(training_lake.url).get_run_file("resume", "metrics.json"))
    assert [h["epoch"] for h in metrics["history"]] == [0, 1, 2]
