"""Lake benchmarks: codec/chunk choice, compression ratio, and write/read throughput vs raw.

Run with ``make bench`` (or ``.venv/bin/pytest tests/benchmarks/test_bench_lake.py -s``).
Figures are printed as ratios against a baseline measured in the same run (writing/reading the
same bytes as one raw file through fsspec); nothing here asserts a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import fsspec
import h5py
import numpy as np
import pytest
import zarr
from conftest import synthetic_master
from zarr.codecs import BloscCodec, BloscShuffle, ZstdCodec

from lake import Lake

PAPER_SHAPE = dict(n_energies=11, npx=300)  # 11 x 2 x 601 x 601 float32 = 31.8 MB
REPEATS = 3


def _best_seconds(action: Callable[[], object], repeats: int = REPEATS) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def _ni_master() -> np.ndarray:
    """kikuchipy's bundled EMsoft Ni master (20 keV plane, uint8-quantised) as float32."""
    import kikuchipy

    path = (
        Path(kikuchipy.__file__).parent
        / "data/emsoft_ebsd_master_pattern/ni_mc_mp_20kv_uint8_gzip_opts9.h5"
    )
    with h5py.File(path, "r") as handle:
        north = handle["EMData/EBSDmaster/mLPNH"][0, 0]
        south = handle["EMData/EBSDmaster/mLPSH"][0, 0]
    return np.stack([north, south])[None].astype(np.float32)


CODECS = {
    "none": (),
    "blosc-lz4-shuffle": (BloscCodec(cname="lz4", clevel=5, shuffle=BloscShuffle.shuffle),),
    "blosc-zstd1-shuffle": (BloscCodec(cname="zstd", clevel=1, shuffle=BloscShuffle.shuffle),),
    "blosc-zstd5-shuffle": (BloscCodec(cname="zstd", clevel=5, shuffle=BloscShuffle.shuffle),),
    "zstd1": (ZstdCodec(level=1),),
}


def _stored_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and p.name != "zarr.json")


def test_codec_and_chunk_choice(tmp_path):
    data = {
        "Ni EMsoft (uint8->float32, 1x2x401x401)": _ni_master(),
        "synthetic bands+noise (11x2x601x601)": synthetic_master(3, **PAPER_SHAPE),
    }
    print("\n[lake] codec/chunk choice: ratio = raw bytes / stored chunk bytes")
    print(f"{'data':42s} {'codec':22s} {'chunk':10s} {'ratio':>6s} {'write MB/s':>10s} "
          f"{'read all MB/s':>13s} {'read 1 plane ms':>15s}")  # fmt: skip
    ratios = {}
    for label, master in data.items():
        for name, compressors in CODECS.items():
            for chunk_label, chunks in (("E,2hemi", (1, 2)), ("E,1hemi", (1, 1))):
                path = tmp_path / f"{name}-{chunk_label}-{master.shape[0]}"
                array = zarr.create_array(
                    str(path), shape=master.shape, dtype="float32",
                    chunks=(*chunks, *master.shape[2:]), compressors=compressors,
                    overwrite=True,
                )  # fmt: skip

                def write(array=array, master=master):
                    array[...] = master

                write_s = _best_seconds(write, 2)
                read_s = _best_seconds(lambda array=array: array[...], 2)
                plane_s = _best_seconds(lambda array=array: array[0], 3)
                ratio = master.nbytes / _stored_bytes(path)
                ratios[(label, name, chunk_label)] = ratio
                mb = master.nbytes / 1e6
                print(f"{label:42s} {name:22s} {chunk_label:10s} {ratio:6.2f} "
                      f"{mb / write_s:10.0f} {mb / read_s:13.0f} {plane_s * 1e3:15.1f}")  # fmt: skip
    assert all(r > 0.9 for r in ratios.values())


def _raw_and_lake(url: str, options: dict, master: np.ndarray) -> dict[str, float]:
    fs, root = fsspec.url_to_fs(url, **options)
    lk = Lake.open(url, storage_options=options)
    energies = np.linspace(10.0, 20.0, master.shape[0])
    weights = np.ones(master.shape[0])
    raw_bytes = master.tobytes()
    raw_path = f"{root}/raw-baseline.bin"
    counter = iter(range(1000))

    def lake_write() -> None:  # a fresh group each time, as a simulation campaign writes
        lk.write_master("bench", f"v{next(counter)}", master, energies, weights, {"npx": 300})

    def raw_write() -> None:  # a fresh file each time
        fs.pipe_file(f"{root}/raw-{next(counter)}.bin", raw_bytes)

    def raw_read() -> None:
        np.frombuffer(fs.cat_file(raw_path), dtype=np.float32).reshape(master.shape)

    lake_write()
    fs.pipe_file(raw_path, raw_bytes)
    out = {
        "raw write s": _best_seconds(raw_write),
        "lake write s": _best_seconds(lake_write),
        "raw read s": _best_seconds(raw_read),
        "lake read s": _best_seconds(lambda: lk.master("bench", "v0").values),
        "lake read 1 plane s": _best_seconds(lambda: lk.master("bench", "v0", energy=15.0).values),
    }
    np.testing.assert_array_equal(lk.master("bench", "v0").values, master)
    out["write ratio"] = out["raw write s"] / out["lake write s"]
    out["read ratio"] = out["raw read s"] / out["lake read s"]
    return out


@pytest.mark.parametrize("where", ["local", "s3"])
def test_throughput_vs_raw(where, request):
    url, options = request.getfixturevalue({"local": "local_lake", "s3": "s3_lake_url"}[where])
    master = synthetic_master(5, **PAPER_SHAPE)
    figures = _raw_and_lake(url, options, master)
    mb = master.nbytes / 1e6
    print(f"\n[lake] {where}: {mb:.1f} MB master (11x2x601x601 float32), best of {REPEATS}")
    for key in ("raw write s", "lake write s", "raw read s", "lake read s"):
        print(f"  {key:20s} {figures[key]:7.3f} s  ({mb / figures[key]:6.0f} MB/s)")
    print(f"  lake read 1 plane    {figures['lake read 1 plane s'] * 1e3:7.1f} ms")
    print(f"  write: lake/raw throughput = {figures['write ratio']:.2f}")
    print(f"  read:  lake/raw throughput = {figures['read ratio']:.2f}")
    assert figures["write ratio"] > 0 and figures["read ratio"] > 0
