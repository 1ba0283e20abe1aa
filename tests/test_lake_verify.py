"""``verify`` re-reads every chunk and names corrupt, incomplete and failed groups."""

from __future__ import annotations

import fsspec
import numpy as np
import pytest

from lake import Lake

ENERGIES = [10.0, 15.0, 20.0]


@pytest.fixture(params=["local", "s3"])
def lake_with_two_masters(request, make_master):
    url, options = request.getfixturevalue(
        {"local": "local_lake", "s3": "s3_lake_url"}[request.param]
    )
    lk = Lake.open(url, storage_options=options, create=True)
    for material_id in ("mp-1", "mp-2"):
        lk.put_structure(material_id, cif="data_x", attrs={"formula": "X"})
        lk.write_master(material_id, "default", make_master(1), ENERGIES, [1, 1, 1])
    fs, root = fsspec.url_to_fs(url, **options)
    return lk, fs, root


def _chunk(root: str, material_id: str, energy_index: int) -> str:
    return f"{root}/masters/{material_id}/default/master/c.{energy_index}.0.0.0"


def test_clean_lake_verifies(lake_with_two_masters):
    lk, _, _ = lake_with_two_masters
    report = lk.verify()
    assert report.ok and report.checked == 4
    assert report.corrupt == report.incomplete == report.failed == []


def test_garbage_chunk_is_named_corrupt(lake_with_two_masters):
    lk, fs, root = lake_with_two_masters
    path = _chunk(root, "mp-2", 1)
    size = len(fs.cat_file(path))
    fs.pipe_file(path, np.random.default_rng(0).bytes(size))
    report = lk.verify()
    assert report.corrupt == ["masters/mp-2/default"]
    assert "chunk" in report.reasons["masters/mp-2/default"]
    assert not report.ok


def test_swapped_chunk_that_still_decodes_fails_its_checksum(lake_with_two_masters):
    """A valid compressed chunk in the wrong place decodes fine; only the checksum catches it."""
    lk, fs, root = lake_with_two_masters
    fs.pipe_file(_chunk(root, "mp-1", 2), fs.cat_file(_chunk(root, "mp-1", 0)))
    report = lk.verify()
    assert report.corrupt == ["masters/mp-1/default"]
    assert (
        report.reasons["masters/mp-1/default"] == "'master' chunks [2] do not match their checksums"
    )


def test_missing_chunk_and_unreadable_metadata(lake_with_two_masters):
    lk, fs, root = lake_with_two_masters
    fs.rm(_chunk(root, "mp-1", 0))
    fs.pipe_file(f"{root}/masters/mp-2/default/zarr.json", b'{"zarr_format": 3, "node')
    report = lk.verify()
    assert sorted(report.corrupt) == ["masters/mp-1/default", "masters/mp-2/default"]
    assert "JSON" in report.reasons["masters/mp-2/default"]
    table = lk.catalog().set_index("material_id")
    assert table.loc["mp-1", "variant"] == "default"  # the catalog reads metadata only
    assert table.isna().loc["mp-2", "variant"]  # unreadable metadata: invisible


def test_failed_and_incomplete_groups_are_listed(lake_with_two_masters, make_master):
    lk, fs, root = lake_with_two_masters
    lk.mark_failed("mp-1", "b01", reason="out of GPU memory")
    fs.makedirs(f"{root}/masters/mp-2/b02/master", exist_ok=True)
    fs.pipe_file(f"{root}/masters/mp-2/b02/master/c.0.0.0.0", b"partial")
    report = lk.verify()
    assert report.failed == ["masters/mp-1/b01"]
    assert report.reasons["masters/mp-1/b01"] == "out of GPU memory"
    assert report.incomplete == ["masters/mp-2/b02"]
    assert lk.master_status("mp-2", "b02") == "incomplete"
    assert not report.ok
