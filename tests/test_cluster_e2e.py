"""The stages on a multi-node Ray cluster against an S3 lake, the way a real cluster runs them.

Two Ray nodes on this machine (``ray.cluster_utils.Cluster``), a lake on the loopback S3 server,
and every stage driven through the CLI with one ``ebsdlake.toml`` that names the cluster and the
lake: ingest -> simulate -> a short training -> evaluate.
"""

from __future__ import annotations

import json

import pytest

from infra.app.cli import main
from lake import Lake

MATERIALS = ["Ni", "Al", "W", "Fe", "Si", "Ge"]


@pytest.fixture
def two_node_cluster():
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def _write_config(path, lake_url: str, storage_options: dict, ray_address: str) -> None:
    """One config file, as an operator would write it for a cluster and a shared bucket."""
    options = json.dumps(storage_options)  # JSON objects are valid TOML inline tables here
    options = options.replace('": ', '" = ')
    path.write_text(
        f'[lake]\nurl = "{lake_url}"\nstorage_options = {options}\n'
        f'[ray]\naddress = "{ray_address}"\n'
        "[train]\nnum_workers = 2\n"
    )


@pytest.mark.slow
def test_ingest_simulate_train_on_two_nodes_with_an_s3_lake(
    two_node_cluster, s3_lake_url, tmp_path, monkeypatch, capsys
):
    import ray

    url, storage_options = s3_lake_url
    config = tmp_path / "ebsdlake.toml"
    _write_config(config, url, storage_options, two_node_cluster.address)
    monkeypatch.setenv("EBSDLAKE_CONFIG", str(config))

    assert main(["config", "show"]) == 0
    shown = capsys.readouterr().out
    assert url in shown and storage_options["secret"] not in shown

    assert main(["ingest", "prototypes", "--only", *MATERIALS]) == 0
    assert main(
        ["simulate", "--npx", "16", "--dmin", "0.15", "--energies", "20:20:1",
         "--mc-electrons", "3000", "--bethe", "4", "8", "50", "--precision", "single",
         "--num-actors", "2", "--quiet"]
    ) == 0  # fmt: skip
    nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert len(nodes) == 2  # the stages joined the two-node cluster, not a new local one

    lake = Lake.open(url, storage_options=storage_options, mode="r")
    ids = [f"proto-{m}" for m in MATERIALS]
    assert all(lake.master_status(m, "default") == "complete" for m in ids)
    report = lake.verify()
    assert not report.incomplete and not report.corrupt

    test_ids = ["proto-Al", "proto-Fe", "proto-Ge"]
    assert main(
        ["train", "--folds", "1", "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "8",
         "--image-size", "32", "--model", "resnet10", "--run-id", "cluster-run",
         "--test-ids", *test_ids, "--patterns-per-material", "4"]
    ) == 0  # fmt: skip
    assert "cluster-run" in lake.run_ids()
    # Ray Train wrote its checkpoints into the S3 lake's run folder, not to local disk
    import fsspec

    run_url, options = lake.run_location("cluster-run")
    fs = fsspec.filesystem("s3", **options)
    listed = [p.rsplit("/", 1)[-1] for p in fs.ls(run_url.removeprefix("s3://"))]
    checkpoints = [name for name in listed if name.startswith("checkpoint_")]
    assert checkpoints, f"no checkpoint in {run_url}: {listed}"
    assert fs.ls(f"{run_url.removeprefix('s3://')}/{checkpoints[-1]}"), "empty checkpoint"
    assert main(["evaluate", "cluster-run", "--patterns-per-material", "4"]) == 0
    # other settings than the run's own evaluation are stored beside it, named by them
    evaluation = json.loads(lake.get_run_file("cluster-run", "evaluation-ppm4.json"))
    assert evaluation["n_patterns"] == 4 * len(test_ids)
