"""Many writer processes at once, and a writer killed with SIGKILL mid-write.

Workers are started with the ``spawn`` method and open their own lake (the async event-loop
thread behind s3fs/zarr is not fork-safe). Both tests run on a local folder and on loopback S3.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_master

from lake import Lake, MasterUnavailableError

N_WRITERS = 4
MATERIALS_PER_WRITER = 2
ENERGIES = [10.0, 12.5, 15.0, 17.5, 20.0]


def _material_seed(material_id: str) -> int:
    return int(material_id.rsplit("-", 1)[-1])


def _write_materials(url: str, options: dict, material_ids: list[str]) -> list[str]:
    """Worker: write a structure and one master per material into a shared lake."""
    lk = Lake.open(url, storage_options=options)
    for material_id in material_ids:
        seed = _material_seed(material_id)
        lk.put_structure(material_id, cif=f"data_{material_id}", attrs={"formula": f"X{seed}"})
        master = synthetic_master(seed, n_energies=len(ENERGIES), npx=30)
        weights = np.linspace(1.0, 2.0, len(ENERGIES)) * seed
        lk.write_master(material_id, "default", master, ENERGIES, weights, attrs={"npx": 30})
    return material_ids


def _write_and_hang_after_chunks(url: str, options: dict, ready: str, after_chunks: int) -> None:
    """Worker: write a master but stop forever once ``after_chunks`` chunks are stored.

    The store's ``set`` is wrapped so the test can kill the process at a known point: some
    chunks written, no completion marker yet. The storage itself stays real.
    """
    from zarr.storage import FsspecStore, LocalStore

    written = 0

    def pausing(original):
        async def set_then_maybe_pause(self, key, value, *args, **kwargs):
            nonlocal written
            await original(self, key, value, *args, **kwargs)
            if "/master/c." in key:
                written += 1
                if written == after_chunks:
                    Path(ready).touch()
                    await asyncio.sleep(3600)

        return set_then_maybe_pause

    for store_class in (LocalStore, FsspecStore):
        store_class.set = pausing(store_class.set)
    lk = Lake.open(url, storage_options=options, create=True)
    master = synthetic_master(7, n_energies=len(ENERGIES), npx=30)
    lk.write_master("mp-7", "default", master, ENERGIES, np.ones(len(ENERGIES)), {"npx": 30})


@pytest.fixture(params=["local", "s3"])
def shared_lake(request):
    return request.getfixturevalue({"local": "local_lake", "s3": "s3_lake_url"}[request.param])


def test_concurrent_writers_every_byte_checked(shared_lake):
    url, options = shared_lake
    Lake.open(url, storage_options=options, create=True)
    batches = [
        [f"mat-{100 + w * MATERIALS_PER_WRITER + i}" for i in range(MATERIALS_PER_WRITER)]
        for w in range(N_WRITERS)
    ]
    context = multiprocessing.get_context("spawn")
    with context.Pool(N_WRITERS) as pool:
        done = pool.starmap(_write_materials, [(url, options, batch) for batch in batches])
    assert sorted(sum(done, [])) == sorted(sum(batches, []))

    lk = Lake.open(url, storage_options=options, mode="r")
    table = lk.catalog()
    assert sorted(table.material_id) == sorted(sum(batches, []))
    assert (table.status == "complete").all()
    for material_id in sum(batches, []):
        seed = _material_seed(material_id)
        expected = synthetic_master(seed, n_energies=len(ENERGIES), npx=30)
        np.testing.assert_array_equal(lk.master(material_id).values, expected)
        np.testing.assert_allclose(
            lk.weights(material_id).values, np.linspace(1.0, 2.0, len(ENERGIES)) * seed, rtol=1e-6
        )
        assert lk.structure(material_id)["formula"] == f"X{seed}"
    report = lk.verify()
    assert report.ok and report.checked == 2 * N_WRITERS * MATERIALS_PER_WRITER


def test_sigkill_mid_write_leaves_an_invisible_incomplete_group(shared_lake, tmp_path):
    url, options = shared_lake
    lk = Lake.open(url, storage_options=options, create=True)
    lk.put_structure("mp-7", cif="data_Ni", attrs={"formula": "Ni"})
    ready = tmp_path / "two-chunks-written"
    context = multiprocessing.get_context("spawn")
    writer = context.Process(
        target=_write_and_hang_after_chunks, args=(url, options, str(ready), 2)
    )
    writer.start()
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert writer.is_alive(), "writer exited before reaching the kill point"
        assert time.monotonic() < deadline, "writer never reached the kill point"
        time.sleep(0.05)
    os.kill(writer.pid, signal.SIGKILL)
    writer.join(30)
    assert writer.exitcode == -signal.SIGKILL

    report = lk.verify()
    assert report.incomplete == ["masters/mp-7/default"] and not report.ok
    table = lk.catalog()
    assert table.loc[table.material_id == "mp-7", "variant"].isna().all()
    assert lk.master_status("mp-7", "default") == "incomplete"
    assert lk.variants("mp-7") == []
    with pytest.raises(MasterUnavailableError, match="incomplete"):
        lk.master("mp-7")

    master = synthetic_master(8, n_energies=len(ENERGIES), npx=30)
    lk.write_master("mp-7", "default", master, ENERGIES, np.ones(len(ENERGIES)), {"npx": 30})
    np.testing.assert_array_equal(lk.master("mp-7").values, master)
    after = lk.verify()
    assert after.ok and after.checked == 2
