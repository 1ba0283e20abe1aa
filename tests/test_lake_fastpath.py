"""The lake's fast write/read paths: optional mantissa rounding, the uncompressed default next
to older Blosc-LZ4 groups, direct chunk reads on local disk, and clean rewrites."""

from __future__ import annotations

import numpy as np
import pytest
from zarr.codecs import BloscCodec

import lake.masters
from lake import Lake, LakeFormatError, LakeInputError
from lake.precision import max_relative_error, round_mantissa

ENERGIES = [10.0, 15.0, 20.0]
WEIGHTS = [0.2, 0.3, 0.5]


@pytest.fixture(params=["local", "s3"])
def local_or_s3(request):
    return request.getfixturevalue({"local": "local_lake", "s3": "s3_lake_url"}[request.param])


def test_rounded_master_round_trips_with_bounded_error(local_or_s3, make_master):
    url, options = local_or_s3
    lk = Lake.open(url, storage_options=options, create=True)
    master = make_master(11, n_energies=3, npx=12) + 2.0
    lk.write_master("mp-1", "r13", master, ENERGIES, WEIGHTS, {"npx": 12}, mantissa_bits=13)
    stored = lk.master("mp-1", "r13")
    np.testing.assert_array_equal(stored.values, round_mantissa(master, 13))
    relative = np.abs(stored.values - master) / np.abs(master)
    assert 0 < relative.max() <= max_relative_error(13)
    assert stored.attrs["precision"] == {"mantissa_bits": 13, "max_relative_error": 2.0**-14}
    assert lk.verify().ok


def test_rounding_matches_numcodecs_bitround():
    from numcodecs import BitRound

    values = (np.random.default_rng(3).standard_normal(5000) * 50).astype(np.float32)
    for bits in (1, 7, 13, 22):
        expected = BitRound(keepbits=bits).encode(values).view(np.float32)
        np.testing.assert_array_equal(round_mantissa(values, bits), expected)
    np.testing.assert_array_equal(round_mantissa(values, 23), values)


@pytest.mark.parametrize("bits", [0, 24, 2.5, "13", True])
def test_bad_mantissa_bits_name_the_field(local_lake, make_master, bits):
    lk = Lake.open(local_lake[0], create=True)
    with pytest.raises(LakeInputError, match=r"master of mp-1: mantissa_bits="):
        lk.write_master("mp-1", "x", make_master(1), ENERGIES, WEIGHTS, {}, mantissa_bits=bits)
    assert lk.master_status("mp-1", "x") == "missing"


def test_groups_written_with_the_old_lz4_default_still_read(local_or_s3, make_master, monkeypatch):
    url, options = local_or_s3
    lk = Lake.open(url, storage_options=options, create=True)
    old = make_master(4)
    old_default = (BloscCodec(cname="lz4", clevel=5, shuffle="shuffle", typesize=4),)
    with monkeypatch.context() as patch:
        patch.setattr(lake.masters, "master_compressors", lambda bits=None: old_default)
        lk.write_master("mp-old", "default", old, ENERGIES, WEIGHTS, {"npx": 10})
    new = make_master(5)
    lk.write_master("mp-new", "default", new, ENERGIES, WEIGHTS, {"npx": 10})
    fs, root = lk._handle.fs, lk._handle.root
    old_meta = fs.cat_file(f"{root}/masters/mp-old/default/master/zarr.json")
    new_meta = fs.cat_file(f"{root}/masters/mp-new/default/master/zarr.json")
    assert b'"blosc"' in old_meta and b'"blosc"' not in new_meta
    np.testing.assert_array_equal(lk.master("mp-old").values, old)
    np.testing.assert_array_equal(lk.master("mp-old", energy=15.0).values, old[1])
    np.testing.assert_array_equal(lk.master("mp-new", energy=[20.0, 10.0]).values, new[[2, 0]])
    assert lk.verify().ok and lk.verify().checked == 2


def test_rewrite_with_fewer_energies_leaves_no_stale_chunks(local_or_s3, make_master):
    url, options = local_or_s3
    lk = Lake.open(url, storage_options=options, create=True)
    lk.write_master("mp-1", "default", make_master(1), ENERGIES, WEIGHTS, {"npx": 10})
    shorter = make_master(2, n_energies=2)
    lk.write_master("mp-1", "default", shorter, ENERGIES[:2], WEIGHTS[:2], {"npx": 10})
    fs, root = lk._handle.fs, lk._handle.root
    chunks = sorted(p.rsplit("/", 1)[-1] for p in fs.find(f"{root}/masters/mp-1/default/master"))
    assert chunks == ["c.0.0.0.0", "c.1.0.0.0", "zarr.json"]
    np.testing.assert_array_equal(lk.master("mp-1").values, shorter)
    assert lk.verify().ok


def test_local_direct_read_names_a_missing_or_truncated_chunk(local_lake, make_master):
    lk = Lake.open(local_lake[0], create=True)
    master = make_master(6)
    lk.write_master("mp-1", "default", master, ENERGIES, WEIGHTS, {"npx": 10})
    folder = f"{lk.url}/masters/mp-1/default/master"
    np.testing.assert_array_equal(lk.master("mp-1").values, master)
    with open(f"{folder}/c.2.0.0.0", "r+b") as handle:
        handle.truncate(100)
    with pytest.raises(LakeFormatError, match=r"c\.2\.0\.0\.0: chunk of 100 bytes does not decode"):
        lk.master("mp-1")
    np.testing.assert_array_equal(lk.master("mp-1", energy=15.0).values, master[1])
    lk._handle.fs.rm(f"{folder}/c.0.0.0.0")
    with pytest.raises(LakeFormatError, match=r"c\.0\.0\.0\.0: chunk is missing"):
        lk.master("mp-1", energy=[10.0])
