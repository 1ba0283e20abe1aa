"""GPU benchmark: images/s through stream + Ray Train vs a bare PyTorch loop, same model/device.

Usage (about 5 minutes on one H100)::

    .venv/bin/python tests/benchmarks/gpu_training_bench.py --out gpu_training.json

It simulates a few small masters with de-ebsd on the GPU into a temporary local lake, runs
``train.supervised.train_supervised`` with one Ray Train GPU worker (ResNet18, bf16 autocast,
channels-last, batch 256, 224 px, stream projecting on the GPU), takes the worker's
``images_per_s`` of the last epoch (setup excluded), and measures a bare bf16 loop on synthetic
tensors of the same shape. Writes both and their ratio (target >= 0.9) as JSON.
The CPU pytest benchmark imports :func:`bare_loop_images_per_s` from here.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from train import worker
from train.models import build_classifier

CUBIC = [
    ("g-cu", "Cu", 0.3615, 225, (0.0, 0.0, 0.0)),
    ("g-fe", "Fe", 0.2866, 229, (0.0, 0.0, 0.0)),
    ("g-si", "Si", 0.5431, 227, (0.125, 0.125, 0.125)),
    ("g-w", "W", 0.3165, 229, (0.0, 0.0, 0.0)),
]


def bare_loop_images_per_s(
    arch: str, num_classes: int, batch: int, size: int, steps: int, device: str, warmup: int = 5
) -> float:
    """Images/s of SGD steps on synthetic (batch, 1, size, size) tensors (bf16 + NHWC on CUDA)."""
    dev = torch.device(device)
    model = build_classifier(num_classes, arch).to(dev)
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    patterns = worker.to_device(torch.randn(batch, 1, size, size), dev)
    labels = torch.randint(num_classes, (batch,), device=dev)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        with worker.precision_context(dev):
            loss = loss_fn(model(patterns).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - started)


def build_lake(url: str, npx: int, device: str) -> list[str]:
    """Simulate the CUBIC masters (one 20 keV plane, npx, dmin 0.1 nm) into a lake."""
    import de_ebsd as de
    import numpy as np

    from lake import Lake

    lake = Lake.open(url)
    for mid, element, a_nm, sg, xyz in CUBIC:
        labels = {"spacegroup_number": sg, "disordered_spacegroup_number": sg}
        lake.put_structure(mid, cif=f"data_{element}\n", attrs={"formula": element, **labels})
        crystal = de.Crystal.from_parameters(a=a_nm, space_group=sg, atoms=[(element, xyz)])
        simulator = de.MasterPatternSimulator(
            crystal, de.Microscope(energy=20e3, sample_tilt=70.0), npx=npx, dmin=0.1
        )
        master = np.asarray(simulator.compute(device=device).data.cpu(), dtype=np.float32)
        lake.write_master(mid, "default", master, energies_kev=[20.0], weights=[1.0])
    return [m[0] for m in CUBIC]


def main() -> int:
    """Run both measurements and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON report path")
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=60, help="steps per epoch (2 epochs)")
    parser.add_argument("--npx", type=int, default=150)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"

    import ray

    from train.supervised import SupervisedConfig, train_supervised

    report: dict = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu"}
    report["host"] = platform.node()
    with tempfile.TemporaryDirectory() as folder:
        url = str(Path(folder) / "lake")
        started = time.perf_counter()
        ids = build_lake(url, args.npx, device)
        report["simulate_s"] = time.perf_counter() - started
        ray.init(include_dashboard=False, log_to_driver=False)
        config = SupervisedConfig(
            arch=args.arch, epochs=2, image_size=args.size, detector_shape=(args.size, args.size),
            batch_size=args.batch, steps_per_epoch=args.steps, num_workers=1,
            use_gpu=device == "cuda", augment=False,
            stream_device="cuda" if device == "cuda" else "cpu",
        )  # fmt: skip
        result = train_supervised(url, {}, ids, config, "gpu-bench")
        ray.shutdown()
    pipeline = result.history[-1]["images_per_s"]
    bare = bare_loop_images_per_s(args.arch, 3, args.batch, args.size, args.steps, device)
    report.update(
        arch=args.arch, batch=args.batch, size=args.size, steps=args.steps,
        stream_ray_train_images_per_s=pipeline, bare_loop_images_per_s=bare,
        ratio=pipeline / bare, history=result.history,
    )  # fmt: skip
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "history"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
