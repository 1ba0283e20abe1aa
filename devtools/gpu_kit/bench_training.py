"""GPU benchmark: images/s through stream + Ray Train vs a bare PyTorch loop, same model/device.

Stage ``training`` of ``devtools/gpu_kit/session.sh``; on its own::

    python3 devtools/gpu_kit/bench_training.py --out gpu_training.json

Expected 1-2 minutes on one H200, most of it Ray and worker start-up (not yet measured there).
It writes four cubic materials with smooth random 20 keV masters (``--simulate``: de-ebsd
masters computed on the device) into a temporary local lake, measures a bare bf16 loop on
synthetic tensors (ResNet18, batch 256, 224 px, channels-last), then runs the same SGD step in
one Ray Train worker fed by :class:`PatternStream` projecting on that device, and takes the
worker's images/s of the last epoch (stream warm, masters cached).
The ratio stream + Ray Train / bare loop has a target of >= 0.9.

The worker loop is the supervised step of ``train.supervised`` (SGD, cross-entropy, bf16
autocast through :mod:`train.worker`) without the run life cycle (no run folder, checkpoints or
validation), so this script depends only on :mod:`train.worker`, :mod:`train.models`,
:mod:`train.patterns` and :mod:`lake`. The JSON is written after each part, so a run cut short
keeps the parts it finished. The CPU pytest benchmark imports :func:`bare_loop_images_per_s`.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from train import worker
from train.models import build_classifier

CUBIC = [
    ("g-cu", "Cu", 0.3615, 225, (0.0, 0.0, 0.0)),
    ("g-fe", "Fe", 0.2866, 229, (0.0, 0.0, 0.0)),
    ("g-si", "Si", 0.5431, 227, (0.125, 0.125, 0.125)),
    ("g-w", "W", 0.3165, 229, (0.0, 0.0, 0.0)),
]
LABEL = "disordered_spacegroup_number"


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


def build_lake(url: str, npx: int, dmin_nm: float, device: str, simulate: bool) -> list[str]:
    """Fill a fresh lake with the CUBIC materials' 20 keV masters; return their ids.

    ``simulate``: de-ebsd Bloch-wave masters on ``device``; else smooth random masters of the
    same shape (the stream's work per pattern does not depend on what the master shows).
    """
    import numpy as np

    from lake import Lake

    lake = Lake.open(url, create=True)
    rng = np.random.default_rng(0)
    side = 2 * npx + 1
    for mid, element, a_nm, sg, xyz in CUBIC:
        labels = {"spacegroup_number": sg, LABEL: sg}
        lake.put_structure(mid, cif=f"data_{element}\n", attrs={"formula": element, **labels})
        if simulate:
            import de_ebsd as de

            crystal = de.Crystal.from_parameters(a=a_nm, space_group=sg, atoms=[(element, xyz)])
            simulator = de.MasterPatternSimulator(
                crystal, de.Microscope(energy=20e3, sample_tilt=70.0), npx=npx, dmin=dmin_nm
            )
            master = np.asarray(simulator.compute(device=device).data.cpu(), dtype=np.float32)
        else:
            coarse = rng.random((2, 9, 9)).astype(np.float32)
            master = np.kron(coarse, np.ones((side // 9 + 1,) * 2, np.float32))[:, :side, :side]
        master = np.ascontiguousarray(master.reshape(1, 2, side, side) + 0.1)
        lake.write_master(mid, "default", master, energies_kev=[20.0], weights=[1.0])
    return [m[0] for m in CUBIC]


def stream_worker(loop: dict[str, Any]) -> None:
    """Ray Train worker: ``loop["epochs"]`` epochs of SGD steps on the stream's batches, each
    epoch's images/s (setup excluded) reported to the driver."""
    import ray.train

    rank, world, device = worker.context(0)
    stream = loop["stream"]
    model = worker.prepare(build_classifier(stream.num_classes, loop["arch"]), device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    history: list[dict[str, float]] = []
    for epoch in range(loop["epochs"]):
        seen, started = 0, time.perf_counter()
        batches = worker.batches_on_device(stream, epoch, rank, world, loop["steps"], device)
        for patterns, labels, _ in batches:
            with worker.precision_context(device):
                loss = loss_fn(model(patterns).float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(labels)
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
        history.append({"epoch": epoch, "images": seen, "images_per_s": seen / elapsed})
        ray.train.report({"epoch": epoch, "images_per_s": seen / elapsed})
    if rank == 0:  # Ray Train v2 keeps metrics only with checkpoints: hand them over on disk
        Path(loop["history_file"]).write_text(json.dumps(history))


def ray_train_images_per_s(
    url: str, ids: list[str], args: argparse.Namespace, storage: str
) -> list[dict[str, float]]:
    """Run :func:`stream_worker` in one Ray Train worker; return its per-epoch history."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from train.patterns.detector import Detector
    from train.patterns.stream import PatternStream, StreamConfig

    on_gpu = args.device == "cuda"
    config = StreamConfig(
        label=LABEL, detector=Detector.paper(shape=(args.size, args.size)),
        image_size=args.size, batch_size=args.batch, device="cuda" if on_gpu else "cpu",
    )  # fmt: skip
    stream = PatternStream(url, {}, ids, config)
    history_file = Path(storage) / "history.json"
    history_file.parent.mkdir(parents=True, exist_ok=True)
    loop = {"stream": stream, "arch": args.arch, "epochs": args.epochs, "steps": args.steps}
    loop["history_file"] = str(history_file)
    trainer = TorchTrainer(
        stream_worker,
        train_loop_config=loop,
        scaling_config=ScalingConfig(num_workers=1, use_gpu=on_gpu),
        run_config=RunConfig(name="gpu-kit-bench", storage_path=storage),
    )
    trainer.fit()
    return json.loads(history_file.read_text())


def main(argv: list[str] | None = None) -> int:
    """Run both measurements and write the JSON report (after each part)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="JSON report path")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=60, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="the last one is reported")
    parser.add_argument("--npx", type=int, default=100, help="master half-side of the lake")
    parser.add_argument("--dmin-nm", type=float, default=0.1, help="simulation dmin (nm)")
    parser.add_argument(
        "--simulate", action="store_true", help="de-ebsd masters instead of smooth random ones"
    )
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_training: no CUDA device (use --device cpu for a dry run)")
    import ray

    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "torch": torch.__version__,
        "host": platform.node(),
        **{k: getattr(args, k) for k in ("arch", "batch", "size", "steps", "epochs", "npx")},
    }

    def write() -> None:
        args.out.write_text(json.dumps(report, indent=2))

    with tempfile.TemporaryDirectory() as folder:
        url = str(Path(folder) / "lake")
        started = time.perf_counter()
        ids = build_lake(url, args.npx, args.dmin_nm, args.device, args.simulate)
        report["simulate_s"] = round(time.perf_counter() - started, 2)
        bare = bare_loop_images_per_s(args.arch, 3, args.batch, args.size, args.steps, args.device)
        report["bare_loop_images_per_s"] = bare
        write()
        print(f"bare loop: {bare:,.1f} images/s", flush=True)
        if args.device == "cuda":
            torch.cuda.empty_cache()
        started = time.perf_counter()
        ray.init(include_dashboard=False, log_to_driver=False)
        try:
            history = ray_train_images_per_s(url, ids, args, str(Path(folder) / "ray"))
        finally:
            ray.shutdown()
        report["ray_train_s"] = round(time.perf_counter() - started, 2)
    pipeline = history[-1]["images_per_s"]
    report.update(stream_ray_train_images_per_s=pipeline, ratio=pipeline / bare, history=history)
    write()
    print(json.dumps({k: v for k, v in report.items() if k != "history"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
