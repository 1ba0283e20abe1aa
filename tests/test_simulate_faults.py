"""Fault tolerance on a two-node Ray cluster: the actor process on the second node is killed
mid-campaign; its job is retried on a replacement actor and every master lands complete and
verified."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from simulation_fixtures import TINY_SETTINGS

from simulate.campaign import run_campaign

TINY = TINY_SETTINGS


def test_killed_actor_is_replaced_and_its_job_retried(local_lake):
    import ray
    from ray.cluster_utils import Cluster

    from ingest.prototypes import load_prototypes
    from ingest.writer import ingest
    from lake import Lake

    url, options = local_lake
    lk = Lake.open(url, options, create=True)
    ingest(lk, load_prototypes(only=["Ni", "Si", "Cr3Si"]), progress=False)

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    second = cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    _wait_until_node_runs_work(ray, second.node_id)
    killed: list[dict] = []
    nodes_used: set[str] = set()
    done = []

    def kill_second_node_actor(event) -> None:
        nodes_used.add(event.worker.get("node_id", ""))
        if event.kind == "complete":
            done.append(event.job.key)
        on_second = event.worker.get("node_id") == second.node_id
        # jobs go only to actors that have started; on a loaded machine the second node's
        # actor can start after the head's has run all six tiny jobs (seen in CI: over 60 s),
        # so the head's first job waits until the other actor's constructor has returned
        if event.kind == "started" and not on_second and second.node_id not in nodes_used:
            _wait_for_another_ready_actor(event.worker.get("pid"), timeout_s=300.0)
        if event.kind == "started" and on_second and not killed:
            # at once: the job was just submitted to this actor, and a tiny job finishes in
            # ~0.2 s, so any wait here races its completion (then nothing is retried)
            os.kill(event.worker["pid"], signal.SIGKILL)
            killed.append({"job": event.job.key, "pid": event.worker["pid"]})

    try:
        summary = run_campaign(
            url, options, TINY, variants=1, num_actors=2, max_retries=2,
            progress=False, on_event=kill_second_node_actor,
        )  # fmt: skip
    finally:
        ray.shutdown()
        cluster.shutdown()

    assert killed, "the second node's actor was never seen running a job"
    assert second.node_id in nodes_used and len(nodes_used) == 2
    assert summary.ok and summary.completed == 6
    assert summary.retries >= 1 and summary.actor_restarts >= 1
    report = lk.verify()
    assert report.ok and not report.incomplete and not report.failed
    for material in ("proto-Ni", "proto-Si", "proto-Cr3Si"):
        for variant in ("default", "b01"):
            assert lk.master_status(material, variant) == "complete"
    # the retried job's master records its second attempt (the job running at the kill may
    # already have finished on a tiny grid; then the actor died on its next job instead)
    attempts = {
        f"{m}/{v}": lk.master(m, v).attrs["attempt"]
        for m in ("proto-Ni", "proto-Si", "proto-Cr3Si")
        for v in ("default", "b01")
    }
    assert max(attempts.values()) == 2, attempts


def _wait_until_node_runs_work(ray, node_id: str, timeout_s: float = 180.0) -> None:
    """Run one task pinned to ``node_id`` so its raylet and worker pool are up before the
    campaign starts: a node that is still starting gets no actor in time (a flake seen once).
    Stronger than ``Cluster.wait_for_nodes`` (registration only): the node has run a worker."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    @ray.remote(num_cpus=1)
    def where() -> str:
        return ray.get_runtime_context().get_node_id()

    pinned = NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)
    assert ray.get(where.options(scheduling_strategy=pinned).remote(), timeout=timeout_s) == node_id


def _wait_for_another_ready_actor(known_pid: int | None, timeout_s: float) -> None:
    """Block until a simulation actor other than ``known_pid`` has finished its constructor.

    Ray titles an actor's process ``ray::SimulationWorker.__init__`` while it is constructed
    and ``ray::SimulationWorker[.method]`` after; both nodes run on this machine.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        titles = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True)
        for line in titles.stdout.splitlines():
            pid, _, title = line.strip().partition(" ")
            ready = title.startswith("ray::SimulationWorker") and "__init__" not in title
            if ready and int(pid) != known_pid:
                return
        time.sleep(0.5)
