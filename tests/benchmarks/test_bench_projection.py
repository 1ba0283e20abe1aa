"""Speed of the projection and the stream, as ratios against baselines measured in the same run.

Run: ``OMP_NUM_THREADS=2 .venv/bin/pytest tests/benchmarks/test_bench_projection.py -q -s``
Figures go to docs/PERFORMANCE.md ("Projection and stream"); nothing here asserts a time.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from train.detector import Detector
from train.orientations import sample_so3
from train.projection import Projector

kp = pytest.importorskip("kikuchipy")
NI = Path(kp.__file__).parent / "data/emsoft_ebsd_master_pattern/ni_mc_mp_20kv_uint8_gzip_opts9.h5"


def _best_rate(fn, n: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def test_projection_vs_kikuchipy_229(tmp_path):
    import dask
    import numba
    from orix.quaternion import Rotation

    threads = 2
    torch.set_num_threads(threads)
    numba.set_num_threads(threads)
    mp = kp.load(NI, projection="lambert", hemisphere="both", energy=20)
    mp.change_dtype("float32")
    det = Detector.paper(shape=(229, 229))
    kdet = det.to_kikuchipy()
    n = 128
    q = sample_so3(n, seed=1)
    master = torch.as_tensor(np.asarray(mp.data))[None]
    fused = Projector(det, backend="fused")
    fused(master, np.zeros(2, int), q[:2])  # compile
    mp.get_patterns(Rotation(q[:2]), kdet, compute=True, show_progressbar=False)
    with dask.config.set(scheduler="threads", num_workers=threads):
        base = _best_rate(
            lambda: mp.get_patterns(Rotation(q), kdet, compute=True, show_progressbar=False), n
        )
    ours = _best_rate(lambda: fused(master, np.zeros(n, int), q), n)
    torch_cpu = _best_rate(
        lambda: Projector(det, backend="torch")(master, np.zeros(n, int), q), n, 1
    )
    print(
        f"\n229x229, {threads} threads: kikuchipy {base:.0f}/s, fused {ours:.0f}/s "
        f"({ours / base:.2f}x), torch-CPU {torch_cpu:.0f}/s ({torch_cpu / base:.2f}x)"
    )
    assert ours > 0 and base > 0


def test_stream_vs_resnet18_consumer(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    import h5py

    from lake import Lake
    from train.augment import AugmentConfig
    from train.stream import PatternStream, StreamConfig

    with h5py.File(NI) as f:
        ni = np.stack([f["EMData/EBSDmaster/mLPNH"][0, 0], f["EMData/EBSDmaster/mLPSH"][0, 0]])
    lk = Lake.open(str(tmp_path / "lake"))
    ids = [f"b-{k}" for k in range(6)]
    for k, mid in enumerate(ids):
        lk.put_structure(mid, cif="data_b", attrs={"disordered_spacegroup_number": 221 + k % 3})
        planes = np.stack([ni, ni.transpose(0, 2, 1)]).astype(np.float32) * (k + 1)
        lk.write_master(mid, "default", planes, energies_kev=[15.0, 20.0], weights=[1.0, 2.0])
    cfg = StreamConfig(
        detector=Detector.paper(shape=(229, 229)),
        image_size=229,
        batch_size=32,
        augment=AugmentConfig.paper(),
        prefetch=2,
    )
    stream = PatternStream(str(tmp_path / "lake"), {}, ids, cfg)
    steps = 6
    list(stream.batches(0, steps=1))  # open lake, reduce masters, compile
    t = time.perf_counter()
    for patterns, _, _ in stream.batches(1, steps=steps):
        assert patterns.shape == (32, 1, 224, 224)
    stream_rate = steps * 32 / (time.perf_counter() - t)

    model = torchvision.models.resnet18(num_classes=3)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.randn(32, 3, 224, 224)
    y = torch.randint(0, 3, (32,))

    def train_steps(k: int) -> None:
        for _ in range(k):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

    train_steps(1)
    consume_rate = _best_rate(lambda: train_steps(2), 64, 1)
    print(
        f"\nstream {stream_rate:.0f} patterns/s (229 -> 224 crop, paper aug); "
        f"ResNet18 training consumes {consume_rate:.0f}/s; ratio {stream_rate / consume_rate:.2f}"
    )
    assert stream_rate > 0 and consume_rate > 0
