"""Speed of the projection and the stream, as ratios against baselines measured in the same run.

Run: ``OMP_NUM_THREADS=2 .venv/bin/pytest tests/benchmarks/test_bench_projection.py -q -s``
Figures go to docs/PERFORMANCE.md ("Projection and stream"); nothing here asserts a time. The
machine may be shared, so every figure is the best of several repeats and each comparison is
interleaved (A, B, A, B, ...) so that both sides see the same background load.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import kikuchipy as kp
import numpy as np
import pytest
import torch
from timing import best_interleaved_seconds

from simulate.validation import emsoft_ni_master_file
from train.patterns.detector import Detector
from train.patterns.orientations import sample_so3
from train.patterns.projection import Projector

NI = emsoft_ni_master_file()
THREADS = 2
SIZE, BATCH = 229, 32


def _best_rate(fn: Callable[[], object], n: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


@pytest.fixture(scope="module")
def ni_signal():
    mp = kp.load(NI, projection="lambert", hemisphere="both", energy=20)
    mp.change_dtype("float32")
    return mp


@pytest.fixture(scope="module")
def bench_lake(tmp_path_factory) -> tuple[str, list[str]]:
    """Six materials (the Ni master, transposed and scaled per material), a local lake."""
    import h5py

    from lake import Lake

    with h5py.File(NI) as f:
        ni = np.stack([f["EMData/EBSDmaster/mLPNH"][0, 0], f["EMData/EBSDmaster/mLPSH"][0, 0]])
    url = str(tmp_path_factory.mktemp("bench") / "lake")
    lk = Lake.open(url, create=True)
    ids = [f"b-{k}" for k in range(6)]
    for k, mid in enumerate(ids):
        lk.put_structure(mid, cif="data_b", attrs={"disordered_spacegroup_number": 221 + k % 3})
        planes = np.stack([ni, ni.transpose(0, 2, 1)]).astype(np.float32) * (k + 1)
        lk.write_master(mid, "default", planes, energies_kev=[15.0, 20.0], weights=[1.0, 2.0])
    return url, ids


def _paper_stream_config(**changes):
    from train.patterns.augment import AugmentConfig
    from train.patterns.stream import StreamConfig

    cfg = StreamConfig(
        detector=Detector.paper(shape=(SIZE, SIZE)),
        image_size=SIZE,
        batch_size=BATCH,
        augment=AugmentConfig.paper(),
        prefetch=2,
    )
    return dataclasses.replace(cfg, **changes)


def _stream_rate(stream, steps: int, epoch: int) -> float:
    t = time.perf_counter()
    for patterns, _, _ in stream.batches(epoch, steps=steps):
        assert patterns.shape == (BATCH, 1, 224, 224)
    return steps * BATCH / (time.perf_counter() - t)


def _fused_kernel_rate(ni_signal, repeats: int = 3) -> float:
    import numba

    numba.set_num_threads(THREADS)
    master = torch.as_tensor(np.asarray(ni_signal.data))[None]
    q = sample_so3(BATCH, seed=1)
    fused = Projector(Detector.paper(shape=(SIZE, SIZE)), backend="fused")
    fused(master, np.zeros(2, int), q[:2])  # compile / load the cache
    return _best_rate(lambda: fused(master, np.zeros(BATCH, int), q), BATCH, repeats)


def test_projection_vs_kikuchipy_229(ni_signal):
    import dask
    from orix.quaternion import Rotation

    torch.set_num_threads(THREADS)
    kdet = Detector.paper(shape=(SIZE, SIZE)).to_kikuchipy()
    det = Detector.paper(shape=(SIZE, SIZE))
    n = 128
    q = sample_so3(n, seed=1)
    master = torch.as_tensor(np.asarray(ni_signal.data))[None]
    fused = Projector(det, backend="fused")
    fused(master, np.zeros(2, int), q[:2])  # compile
    ni_signal.get_patterns(Rotation(q[:2]), kdet, compute=True, show_progressbar=False)
    with dask.config.set(scheduler="threads", num_workers=THREADS):
        base = _best_rate(
            lambda: ni_signal.get_patterns(Rotation(q), kdet, compute=True, show_progressbar=False),
            n,
        )
    ours = _best_rate(lambda: fused(master, np.zeros(n, int), q), n)
    torch_cpu = _best_rate(
        lambda: Projector(det, backend="torch")(master, np.zeros(n, int), q), n, 1
    )
    print(
        f"\n229x229, {THREADS} threads: kikuchipy {base:.0f}/s, fused {ours:.0f}/s "
        f"({ours / base:.2f}x), torch-CPU {torch_cpu:.0f}/s ({torch_cpu / base:.2f}x)"
    )
    assert ours > 0 and base > 0


def test_stream_stages_fast_vs_reference(ni_signal):
    """Each render step of a 32 x 229^2 batch: the fast path against the code it replaced."""
    from train.patterns.augment import AugmentConfig, geometric
    from train.patterns.blur import gaussian_blur, gaussian_blur_reference
    from train.patterns.preprocess import PreprocessConfig, preprocess_tensor

    torch.set_num_threads(THREADS)
    master = torch.as_tensor(np.asarray(ni_signal.data))[None]
    x = Projector(Detector.paper(shape=(SIZE, SIZE)))(
        master, np.zeros(BATCH, int), sample_so3(BATCH, seed=2)
    )
    sigma = PreprocessConfig().dynamic_background_sigma * SIZE
    pre = PreprocessConfig()
    paper = AugmentConfig.paper()
    preprocess_tensor(x[:2], pre)  # compile / load the Numba cache

    def reference_flips():
        g = torch.Generator().manual_seed(0)
        y = x[:, :224, :224]
        flip = torch.rand(BATCH, generator=g) < 0.5
        y = torch.where(flip[:, None, None], y.flip(-2), y)
        return torch.where(flip[:, None, None], y.flip(-1), y)

    seconds = best_interleaved_seconds(
        {
            "blur_conv": lambda: gaussian_blur_reference(x, sigma),
            "blur_matrix": lambda: gaussian_blur(x, sigma),
            "pre_tensor_ops": lambda: preprocess_tensor(x, pre, cpu_kernel=False),
            "pre_fused": lambda: preprocess_tensor(x, pre),
            "geo_flip_where": reference_flips,
            "geo_copies": lambda: geometric(x, paper, torch.Generator().manual_seed(0)),
        },
        repeats=3,
    )
    rates = {name: BATCH / t for name, t in seconds.items()}
    kernel = _fused_kernel_rate(ni_signal)
    print(f"\n[bench stages] {BATCH} x {SIZE}^2, {THREADS} threads, patterns/s (fused kernel "
          f"{kernel:.0f}/s):")  # fmt: skip
    for fast, ref in [
        ("blur_matrix", "blur_conv"),
        ("pre_fused", "pre_tensor_ops"),
        ("geo_copies", "geo_flip_where"),
    ]:
        print(
            f"  {fast}: {rates[fast]:.0f}/s vs {ref}: {rates[ref]:.0f}/s "
            f"({rates[fast] / rates[ref]:.1f}x)"
        )
    assert all(rate > 0 for rate in rates.values())


def test_stream_schedulers_sync_threads_ray(bench_lake, ni_signal):
    """The same batches through Dask's sync and threaded schedulers and Dask-on-Ray."""
    import ray

    from train.patterns.stream import PatternStream

    url, ids = bench_lake
    torch.set_num_threads(THREADS)
    ray.init(address="local", num_cpus=THREADS, include_dashboard=False, log_to_driver=False)
    try:
        streams = {
            name: PatternStream(url, {}, ids, _paper_stream_config(scheduler=name))
            for name in ("sync", "threads", "ray")
        }
        for stream in streams.values():
            list(stream.batches(0, steps=4))  # read and reduce masters, start Ray workers
        steps, rounds = 8, 3
        best = dict.fromkeys(streams, 0.0)
        for _ in range(rounds):
            for name, stream in streams.items():
                best[name] = max(best[name], _stream_rate(stream, steps, epoch=1))
    finally:
        ray.shutdown()
    kernel = _fused_kernel_rate(ni_signal)
    print(
        f"\n[bench schedulers] paper stream {SIZE}->224, batch {BATCH}, {THREADS} CPUs, best of "
        f"{rounds} x {steps} batches: "
        + ", ".join(f"{k} {v:.0f}/s ({v / kernel:.2f} of kernel)" for k, v in best.items())
        + f"; fused kernel alone {kernel:.0f}/s"
    )
    assert all(rate > 0 for rate in best.values())


def test_stream_vs_resnet18_consumer(bench_lake, ni_signal):
    import torchvision

    from train.patterns.stream import PatternStream

    url, ids = bench_lake
    torch.set_num_threads(THREADS)
    stream = PatternStream(url, {}, ids, _paper_stream_config())
    list(stream.batches(0, steps=2))  # open lake, reduce masters, compile
    stream_rate = max(_stream_rate(stream, 6, epoch=1) for _ in range(2))
    kernel = _fused_kernel_rate(ni_signal)

    model = torchvision.models.resnet18(num_classes=3)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.randn(BATCH, 3, 224, 224)
    y = torch.randint(0, 3, (BATCH,))

    def train_steps(k: int) -> None:
        for _ in range(k):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

    train_steps(1)
    consume_rate = _best_rate(lambda: train_steps(2), 2 * BATCH, 1)
    print(
        f"\n[bench consumer] stream {stream_rate:.0f} patterns/s ({SIZE} -> 224 crop, paper aug; "
        f"{stream_rate / kernel:.2f} of the fused kernel's {kernel:.0f}/s); ResNet18 training "
        f"consumes {consume_rate:.1f}/s; stream/consumer {stream_rate / consume_rate:.1f}"
    )
    assert stream_rate > 0 and consume_rate > 0
