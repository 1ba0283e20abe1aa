"""The lake's typed API on local disk, memory:// and loopback S3."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from lake import (
    Lake,
    LakeInputError,
    LakeNotFoundError,
    LakeReadOnlyError,
    MasterUnavailableError,
)

SI_ATTRS = {
    "formula": "Si",
    "source": "prototype",
    "spacegroup_number": 227,
    "spacegroup_symbol": "Fd-3m",
    "disordered_spacegroup_number": 227,
    "disordered_spacegroup_symbol": "Fd-3m",
    "crystal_system": "cubic",
    "lattice_nm": {"a": 0.5431, "b": 0.5431, "c": 0.5431, "alpha": 90, "beta": 90, "gamma": 90},
}


def _sim_attrs(npx: int, b_nm2: float = 0.005) -> dict:
    return {
        "engine": "de-ebsd",
        "engine_version": "0.2.1",
        "npx": npx,
        "dmin_nm": 0.05,
        "bethe": {"strong": 8, "weak": 50, "complete": 100},
        "voltage_kv": 20.0,
        "sample_tilt_deg": 70.0,
        "bfactors_nm2": [
            {"element": "Si", "wyckoff": "8a", "B_nm2": b_nm2},
            {"element": "Si", "wyckoff": "8a", "B_nm2": b_nm2 + 0.002},
        ],
        "wall_time_s": np.float64(1.5),
    }


def test_structure_master_roundtrip(any_lake, make_master):
    url, options = any_lake
    lk = Lake.open(url, storage_options=options, create=True)
    lk.put_structure("mp-149", cif="data_Si\n_cell_length_a 5.431\n", attrs=SI_ATTRS)
    master = make_master(seed=1, n_energies=3, npx=10)
    energies = np.array([10.0, 15.0, 20.0])
    weights = np.array([0.2, 0.3, 0.5])
    lk.write_master("mp-149", "default", master, energies, weights, attrs=_sim_attrs(10))

    reopened = Lake.open(url, storage_options=options, mode="r")
    structure = reopened.structure("mp-149")
    assert structure["spacegroup_symbol"] == "Fd-3m"
    assert structure["cif"].startswith("data_Si")
    assert reopened.structure_ids() == ["mp-149"]

    array = reopened.master("mp-149", variant="default")
    assert isinstance(array, xr.DataArray)
    assert array.dims == ("energy", "hemisphere", "row", "col")
    assert array.dtype == np.float32
    np.testing.assert_array_equal(array.values, master)
    np.testing.assert_allclose(array["energy"].values, energies)
    assert list(array["hemisphere"].values) == ["north", "south"]
    assert array["bfactor_nm2"].item() == pytest.approx(0.006)
    assert array.attrs["bethe"] == {"strong": 8, "weak": 50, "complete": 100}
    assert "checksums" not in array.attrs

    plane = reopened.master("mp-149", energy=15.0)
    assert plane.dims == ("hemisphere", "row", "col")
    np.testing.assert_array_equal(plane.values, master[1])
    pair = reopened.master("mp-149", energy=[20.0, 10.0])
    np.testing.assert_array_equal(pair.values, master[[2, 0]])
    lazy = reopened.master("mp-149", lazy=True)
    np.testing.assert_array_equal(lazy.data.compute(), master)
    np.testing.assert_allclose(reopened.weights("mp-149").values, weights)
    assert reopened.variants("mp-149") == ["default"]
    assert reopened.master_status("mp-149", "default") == "complete"
    assert reopened.master_status("mp-149", "other") == "missing"


def test_catalog_lists_structures_masters_and_failures(any_lake, make_master):
    url, options = any_lake
    lk = Lake.open(url, storage_options=options, create=True)
    lk.put_structure("mp-149", cif="data_Si", attrs=SI_ATTRS)
    lk.put_structure("mp-30", cif="data_Cu", attrs={**SI_ATTRS, "formula": "Cu"})
    lk.write_master("mp-149", "b00", make_master(2), [10, 15, 20], [1, 1, 1], _sim_attrs(10))
    lk.write_master("mp-149", "b01", make_master(3), [10, 15, 20], [1, 1, 1], _sim_attrs(10))
    lk.mark_failed("mp-149", "b02", reason="timeout after 3600 s")

    table = lk.catalog()
    expected_columns = {
        "material_id", "formula", "source", "spacegroup_number", "spacegroup_symbol",
        "disordered_spacegroup_number", "disordered_spacegroup_symbol", "crystal_system",
        "variant", "status", "npx", "n_energies", "engine",
    }  # fmt: skip
    assert expected_columns <= set(table.columns)
    si = table[table.material_id == "mp-149"].set_index("variant")
    assert si.loc["b00", "status"] == "complete"
    assert si.loc["b01", "n_energies"] == 3
    assert si.loc["b02", "status"] == "failed"
    assert si.loc["b02", "failure_reason"] == "timeout after 3600 s"
    cu = table[table.material_id == "mp-30"]
    assert len(cu) == 1 and cu.variant.isna().all() and cu.formula.item() == "Cu"

    with pytest.raises(MasterUnavailableError, match="timeout after 3600 s"):
        lk.master("mp-149", "b02")
    assert lk.master_status("mp-149", "b02") == "failed"
    assert lk.variants("mp-149") == ["b00", "b01"]

    lk.write_master("mp-149", "b02", make_master(4), [10, 15, 20], [1, 1, 1], _sim_attrs(10))
    assert lk.master_status("mp-149", "b02") == "complete"
    np.testing.assert_array_equal(lk.master("mp-149", "b02").values, make_master(4))


def test_remove_variant_and_material(any_lake, make_master):
    url, options = any_lake
    lk = Lake.open(url, storage_options=options, create=True)
    lk.put_structure("mp-149", cif="data_Si", attrs=SI_ATTRS)
    for variant in ("b00", "b01"):
        lk.write_master("mp-149", variant, make_master(5), [10, 15, 20], [1, 1, 1])
    lk.remove("mp-149", "b00")
    assert lk.variants("mp-149") == ["b01"]
    lk.remove("mp-149")
    assert lk.structure_ids() == []
    assert lk.catalog().empty
    with pytest.raises(LakeNotFoundError, match="mp-149"):
        lk.remove("mp-149")


def test_run_files(any_lake):
    url, options = any_lake
    lk = Lake.open(url, storage_options=options, create=True)
    lk.put_run_file("run-1", "metrics.json", b'{"acc": 0.9}')
    assert lk.get_run_file("run-1", "metrics.json") == b'{"acc": 0.9}'
    assert lk.run_ids() == ["run-1"]
    location, run_options = lk.run_location("run-1")
    assert location.endswith("/runs/run-1") and run_options == options
    with pytest.raises(LakeNotFoundError, match="confusion.npy"):
        lk.get_run_file("run-1", "confusion.npy")


def test_read_only_lake_refuses_writes(local_lake, make_master):
    url, options = local_lake
    Lake.open(url, storage_options=options, create=True).put_structure(
        "mp-1", cif="data_x", attrs={}
    )
    reader = Lake.open(url, storage_options=options, mode="r")
    with pytest.raises(LakeReadOnlyError, match="read-only"):
        reader.write_master("mp-1", "default", make_master(1), [10, 15, 20], [1, 1, 1])
    with pytest.raises(LakeReadOnlyError):
        reader.put_structure("mp-2", cif="data_y")


@pytest.mark.parametrize(
    ("bad_id", "what"),
    [("", "material id"), (".hidden", "material id"), ("a/b", "material id"),
     ("x" * 129, "material id"), ("mp 149", "material id")],
)  # fmt: skip
def test_invalid_material_ids_are_refused(memory_lake, bad_id, what):
    lk = Lake.open(memory_lake[0], create=True)
    with pytest.raises(LakeInputError, match=f"invalid {what}"):
        lk.put_structure(bad_id, cif="data_x")
    with pytest.raises(LakeInputError, match="invalid variant"):
        lk.master("mp-1", variant="../etc")


def test_bad_masters_are_refused(memory_lake, make_master):
    lk = Lake.open(memory_lake[0], create=True)
    good = make_master(1, n_energies=3, npx=10)
    cases = [
        (good.astype(np.float64), "dtype float64 is not float32"),
        (good[:, :1], "is not \\(n_energies, 2"),
        (good[..., :-1], "is not \\(n_energies, 2"),
        (good[0], "is not \\(n_energies, 2"),
    ]
    for master, message in cases:
        with pytest.raises(LakeInputError, match=f"mp-1.*{message}"):
            lk.write_master("mp-1", "default", master, [10, 15, 20][: len(master)], [1, 1, 1])
    with pytest.raises(LakeInputError, match="npx=20"):
        lk.write_master("mp-1", "default", good, [10, 15, 20], [1, 1, 1], attrs={"npx": 20})
    with pytest.raises(LakeInputError, match="energies_kev has 2 values"):
        lk.write_master("mp-1", "default", good, [10, 15], [1, 1, 1])
    with pytest.raises(LakeInputError, match="reserved"):
        lk.write_master("mp-1", "default", good, [10, 15, 20], [1, 1, 1], {"status": "x"})
    with_nan = good.copy()
    with_nan[0, 0, 0, 0] = np.nan
    with pytest.raises(LakeInputError, match="NaN"):
        lk.write_master("mp-1", "default", with_nan, [10, 15, 20], [1, 1, 1])
    assert lk.master_status("mp-1", "default") == "missing"


def test_unknown_things_name_themselves(memory_lake, make_master):
    lk = Lake.open(memory_lake[0], create=True)
    with pytest.raises(LakeNotFoundError, match="unknown material id 'mp-404'"):
        lk.structure("mp-404")
    with pytest.raises(LakeNotFoundError, match="no master for material 'mp-404'"):
        lk.master("mp-404")
    lk.write_master("mp-1", "default", make_master(1), [10, 15, 20], [1, 1, 1])
    with pytest.raises(LakeNotFoundError, match="no energy plane at 12.5 keV"):
        lk.master("mp-1", energy=12.5)
