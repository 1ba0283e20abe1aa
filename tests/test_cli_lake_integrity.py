"""Issue 15, lake items: reads check CRC-32C, damaged masters are shown and fixable, opening
never creates a lake by accident, and ``lake ls`` keeps whole ids for scripts (real Zarr
stores, the real CLI through ``infra.app.cli.main``)."""

from __future__ import annotations

import csv
import io
import json

import fsspec
import numpy as np
import pytest
from cli_checks import one_line_error
from numcodecs import Zstd

from infra.app.cli import main
from lake import ChecksumError, Lake, LakeNotFoundError, MasterUnavailableError

LONG_ID = "proto-" + "VeryLongMaterialName" * 3  # longer than any terminal column


def _silently_changed(encoded: bytes) -> bytes:
    """A chunk that still decodes, to the same size, but to other values (a bit flip upstream
    of the codec: the kind of damage only a checksum finds)."""
    plane = np.frombuffer(Zstd().decode(encoded), dtype=np.float32).copy()
    plane[7] += 1.0
    return Zstd().encode(plane.tobytes())


def _corrupt_local(url: str, material: str, variant: str, chunk: int) -> None:
    path = f"{url}/masters/{material}/{variant}/master/c.{chunk}.0.0.0"
    with open(path, "rb") as handle:
        encoded = handle.read()
    with open(path, "wb") as handle:
        handle.write(_silently_changed(encoded))


def _lake_with_master(url: str, make_master, material: str = "mp-149") -> Lake:
    lk = Lake.open(url, create=True)
    lk.put_structure(material, cif="data_Si", attrs={"formula": "Si", "source": "prototype"})
    lk.write_master(material, "default", make_master(1), [10, 15, 20], [1, 1, 1], {"npx": 10})
    return lk


@pytest.mark.parametrize("lazy", [False, True])
def test_local_reads_check_every_chunk(local_lake, make_master, lazy):
    url, _ = local_lake
    lk = _lake_with_master(url, make_master)
    good = lk.master("mp-149").values
    _corrupt_local(url, "mp-149", "default", 1)
    with pytest.raises(ChecksumError) as caught:
        _ = lk.master("mp-149", lazy=lazy).values
    message = str(caught.value)
    assert "\n" not in message
    for text in ("'mp-149'", "'default'", "chunk 1", "CRC-32C", "lake verify --repair"):
        assert text in message
    # the planes that are intact still read, eagerly and lazily
    np.testing.assert_array_equal(lk.master("mp-149", energy=10).values, good[0])
    np.testing.assert_array_equal(lk.master("mp-149", energy=[20], lazy=True).values, good[2:])


def test_reads_through_zarr_check_every_chunk(memory_lake, make_master):
    url, _ = memory_lake
    _lake_with_master(url, make_master)
    fs = fsspec.filesystem("memory")
    path = f"{url.removeprefix('memory://')}/masters/mp-149/default/master/c.2.0.0.0"
    fs.pipe_file(path, _silently_changed(fs.cat_file(path)))
    with pytest.raises(ChecksumError, match="master 'mp-149' variant 'default'.*chunk 2"):
        Lake.open(url, mode="r").master("mp-149", energy=20.0)


def test_verify_says_how_to_fix_and_repair_marks_damaged(local_lake, make_master, capsys):
    url, _ = local_lake
    _lake_with_master(url, make_master)
    _corrupt_local(url, "mp-149", "default", 0)
    assert main(["--lake", url, "lake", "verify", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "corrupt" in out and "fix: 1 corrupt master(s): `ebsdlake lake verify --repair`" in out
    assert Lake.open(url).master_status("mp-149", "default") == "complete"  # verify only reads

    assert main(["--lake", url, "lake", "verify", "--quiet", "--repair"]) == 1
    out = capsys.readouterr().out
    assert "`ebsdlake simulate --materials mp-149` redoes them" in out
    lk = Lake.open(url, mode="r")
    assert lk.master_status("mp-149", "default") == "damaged"
    with pytest.raises(MasterUnavailableError, match="is damaged .*chunks \\[0\\].*simulate"):
        lk.master("mp-149")
    assert lk.master_attrs("mp-149", "default")["npx"] == 10  # settings kept

    assert main(["--lake", url, "lake", "ls", "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["status"] == "damaged" and row["variant"] == "default"
    assert main(["--lake", url, "lake", "ls"]) == 0
    assert "damaged" in capsys.readouterr().out


def test_ls_keeps_whole_ids_when_piped_and_has_script_formats(local_lake, make_master, capsys):
    url, _ = local_lake
    _lake_with_master(url, make_master, material=LONG_ID)
    assert main(["--lake", url, "lake", "ls"]) == 0  # captured: not a terminal
    out = capsys.readouterr().out
    assert LONG_ID in out and "..." not in out and "…" not in out
    assert "n_energies" in out  # a count, named as one

    assert main(["--lake", url, "lake", "ls", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["material_id"], r["status"], r["n_energies"]) for r in rows] == [
        (LONG_ID, "complete", "3")
    ]
    assert main(["--lake", url, "lake", "ls", "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["material_id"] == LONG_ID and row["n_energies"] == 3 and row["npx"] == 10
    assert row["wall_time_s"] is None


def test_open_never_creates_a_lake_by_accident(tmp_path, capsys):
    typo = tmp_path / "lake.zar"
    with pytest.raises(LakeNotFoundError, match="no lake here.*create=True"):
        Lake.open(str(typo))
    assert not typo.exists()
    with pytest.raises(ValueError, match="create=True"):
        Lake.open(str(typo), mode="a")  # type: ignore[arg-type]
    lk = Lake.open(str(tmp_path / "new"), create=True)
    assert lk.created and not Lake.open(str(tmp_path / "new"), create=True).created

    # ingest is the first command a user runs: it creates the lake and says so, once
    url = str(tmp_path / "first")
    assert main(["--lake", url, "ingest", "prototypes", "--only", "Ni"]) == 0
    assert f"ingest: created a new lake at {url}" in capsys.readouterr().err
    assert main(["--lake", url, "ingest", "prototypes", "--only", "Si"]) == 0
    assert "created" not in capsys.readouterr().err
    # every other command refuses a lake that does not exist
    line = one_line_error(capsys, ["--lake", str(typo), "lake", "verify"])
    assert "no lake here" in line
    assert not typo.exists()
