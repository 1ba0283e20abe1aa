"""Ingest throughput: synthetic generation and normalisation, as ratios against a baseline
measured in the same run (no timed asserts). Run: ``make bench`` or
``.venv/bin/pytest tests/benchmarks/test_bench_ingest.py -s``."""

from __future__ import annotations

import time

from ingest.prototypes import load_prototypes
from ingest.synthetic import generate
from ingest.writer import ingest


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def test_bench_ingest_throughput(tmp_path):
    from lake import Lake

    start = time.perf_counter()
    baseline = list(load_prototypes())  # normalise + label 16 hand-made structures
    base_s = time.perf_counter() - start

    groups = list(range(1, 231, 5))  # 46 groups spread over all crystal systems
    start = time.perf_counter()
    synthetic = list(generate(groups, per_group=1, seed=0, on_reject=lambda *a: None))
    syn_s = time.perf_counter() - start

    lake = Lake.open(str(tmp_path / "lake"), create=True)
    start = time.perf_counter()
    report = ingest(lake, synthetic, progress=False)
    write_s = time.perf_counter() - start

    base_rate = _rate(len(baseline), base_s)
    syn_rate = _rate(len(synthetic), syn_s)
    write_rate = _rate(len(report.ingested), write_s)
    print(
        f"\n[ingest bench] normalise+label prototypes: {base_rate:.1f} structures/s (baseline)"
        f"\n[ingest bench] synthetic generation ({len(synthetic)} structures, "
        f"{len(groups)} groups): {syn_rate:.2f} structures/s = {syn_rate / base_rate:.3f}x baseline"
        f"\n[ingest bench] lake writes (local): {write_rate:.1f} structures/s = "
        f"{write_rate / base_rate:.2f}x baseline"
    )
    assert len(report.ingested) == len(synthetic) > 0
