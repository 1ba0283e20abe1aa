"""Farm overhead: masters per hour through the Ray farm vs. the engine in a plain loop, same
machine, same jobs, measured in the same run (a ratio; no timed asserts).

    OMP_NUM_THREADS=1 .venv/bin/pytest tests/benchmarks/test_bench_simulate.py -s -q
"""

from __future__ import annotations

import json
import os
import time

from simulation_fixtures import TINY_SETTINGS

from simulate.campaign import run_campaign
from simulate.engines import get_engine
from simulate.jobs import plan_jobs

SETTINGS = TINY_SETTINGS.refine(npx=24, dmin_nm=0.1, energy_min_kev=19.0, mc_electrons=20_000)
MATERIALS = ["Ni", "Si", "Cr3Si", "NiAl"]


def test_farm_vs_plain_loop(tmp_path):
    import ray
    import torch

    from ingest.prototypes import load_prototypes
    from ingest.writer import ingest
    from lake import Lake

    cpus = 2
    url = str(tmp_path / "lake")
    lk = Lake.open(url, create=True)
    ingest(lk, load_prototypes(only=MATERIALS), progress=False)
    ids = lk.structure_ids()
    jobs = plan_jobs(lk, ids, n_random_variants=1).jobs

    threads = torch.get_num_threads()
    torch.set_num_threads(cpus)
    started = time.perf_counter()
    engine = get_engine("dynamical")
    engine.warm_up("cpu")
    for job in jobs:
        result = engine.run(job.structure, SETTINGS, job.bfactors_nm2)
        lk.write_master(job.material_id, job.variant, result.master,
                        energies_kev=result.energies_kev, weights=result.weights,
                        attrs=result.attrs)  # fmt: skip
    loop_s = time.perf_counter() - started
    torch.set_num_threads(threads)
    for job in jobs:
        lk.remove(job.material_id, job.variant)

    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    try:
        started = time.perf_counter()
        summary = run_campaign(url, None, SETTINGS, variants=1, num_actors=cpus, progress=False)
        farm_s = time.perf_counter() - started
    finally:
        ray.shutdown()
    assert summary.ok and summary.completed == len(jobs)
    assert lk.verify().ok
    figures = {
        "jobs": len(jobs),
        "plain_loop_s": round(loop_s, 1),
        "farm_s": round(farm_s, 1),
        "plain_masters_per_hour": round(3600 * len(jobs) / loop_s, 1),
        "farm_masters_per_hour": round(3600 * len(jobs) / farm_s, 1),
        "farm_over_loop": round(loop_s / farm_s, 3),
        "cpus": cpus,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    print("\nsimulate farm benchmark:", json.dumps(figures))
