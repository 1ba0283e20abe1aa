"""GPU benchmark: mixed-material projection throughput (target >= 50,000 patterns/s on CUDA).

Stage ``projection`` of ``devtools/gpu_kit/session.sh``; on its own::

    python3 devtools/gpu_kit/bench_projection.py --out gpu_projection.json

Expected well under a minute on one H200 (not yet measured there). Projects mixed batches of random orientations from
``--materials`` random masters of the paper's size onto the paper's detector resampled to each
``--sizes``, for each ``--batches``, and writes patterns/s per (size, batch) with the device.
The JSON is rewritten after every configuration, so a run stopped by ``--budget-s`` (or killed
by the session's stage limit) keeps what it measured. ``--device cpu`` with small sizes is the
session's dry run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from train.patterns.detector import Detector
from train.patterns.orientations import sample_so3
from train.patterns.projection import Projector


def _ints(text: str) -> list[int]:
    """A comma-separated list of positive integers (argparse type)."""
    return [int(part) for part in text.split(",") if part]


def rate(projector: Projector, masters: torch.Tensor, batch: int, reps: int) -> float:
    """Patterns/s of ``reps`` projections of one mixed batch, after one warm-up call."""
    sync = torch.cuda.synchronize if masters.device.type == "cuda" else (lambda: None)
    quats = sample_so3(batch, seed=1)
    index = np.random.default_rng(0).integers(0, masters.shape[0], batch)
    projector(masters, index, quats)
    sync()
    started = time.perf_counter()
    for _ in range(reps):
        projector(masters, index, quats)
    sync()
    return reps * batch / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    """Measure every (size, batch) that fits in the budget; write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="JSON file for the figures")
    parser.add_argument("--device", default="cuda", help="torch device (cuda, cpu)")
    parser.add_argument("--materials", type=int, default=64, help="masters in the mixed batch")
    parser.add_argument("--npx", type=int, default=601, help="master side (2 * 300 + 1)")
    parser.add_argument("--sizes", type=_ints, default=[128, 224, 229], help="detector sides")
    parser.add_argument("--batches", type=_ints, default=[256, 1024], help="batch sizes")
    parser.add_argument("--reps", type=int, default=20, help="timed projections per figure")
    parser.add_argument("--budget-s", type=float, default=60.0, help="stop starting new figures")
    args = parser.parse_args(argv)
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_projection: no CUDA device (use --device cpu for a dry run)")
    started = time.perf_counter()
    gen = torch.Generator(device=dev).manual_seed(0)
    masters = torch.rand((args.materials, 2, args.npx, args.npx), device=dev, generator=gen)
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "materials": args.materials,
        "npx": args.npx,
        "results": [],
        "complete": False,
    }
    figures = [(size, batch) for size in args.sizes for batch in args.batches]
    for size, batch in figures:
        if time.perf_counter() - started > args.budget_s:
            print(f"budget of {args.budget_s:.0f} s spent: {size}x{size} batch {batch} not run")
            break
        projector = Projector(Detector.paper(shape=(size, size)), device=dev)
        per_s = rate(projector, masters, batch, args.reps)
        report["results"].append({"size": size, "batch": batch, "patterns_per_s": per_s})
        report["complete"] = len(report["results"]) == len(figures)
        args.out.write_text(json.dumps(report, indent=2))
        print(f"{size}x{size} batch {batch}: {per_s:,.0f} patterns/s", flush=True)
    return 0 if report["results"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
