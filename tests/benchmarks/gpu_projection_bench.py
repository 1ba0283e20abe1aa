"""GPU benchmark: mixed-material projection throughput on CUDA (target >= 50,000 patterns/s).

Usage: ``.venv/bin/python tests/benchmarks/gpu_projection_bench.py --out gpu_projection.json``
Runs in about a minute; writes patterns/s per (image size, batch size) and the device name.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from train.detector import Detector
from train.orientations import sample_so3
from train.projection import Projector


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, type=Path, help="JSON file for the figures")
    parser.add_argument("--materials", type=int, default=64, help="masters in the mixed batch")
    parser.add_argument("--npx", type=int, default=601, help="master side (2 * 300 + 1)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_projection_bench: no CUDA device")
    dev = torch.device("cuda")
    gen = torch.Generator(device=dev).manual_seed(0)
    masters = torch.rand((args.materials, 2, args.npx, args.npx), device=dev, generator=gen)
    results = []
    for size in (128, 224, 229):
        proj = Projector(Detector.paper(shape=(size, size)), device=dev)
        for batch in (256, 1024):
            q = sample_so3(batch, seed=1)
            idx = np.random.default_rng(0).integers(0, args.materials, batch)
            proj(masters, idx, q)
            torch.cuda.synchronize()
            reps = 20
            t = time.perf_counter()
            for _ in range(reps):
                proj(masters, idx, q)
            torch.cuda.synchronize()
            rate = reps * batch / (time.perf_counter() - t)
            results.append({"size": size, "batch": batch, "patterns_per_s": rate})
            print(f"{size}x{size} batch {batch}: {rate:,.0f} patterns/s")
    args.out.write_text(
        json.dumps(
            {
                "device": torch.cuda.get_device_name(0),
                "materials": args.materials,
                "npx": args.npx,
                "results": results,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
