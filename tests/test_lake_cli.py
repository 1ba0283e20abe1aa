"""``ebsdlake lake ls|show|verify|rm`` through the real console-script entry point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from infra.app.cli import main
from lake import Lake


@pytest.fixture
def filled_lake(local_lake, make_master, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps tables to the terminal width
    url, _ = local_lake
    lk = Lake.open(url, create=True)
    lk.put_structure(
        "mp-149",
        cif="data_Si",
        attrs={
            "formula": "Si",
            "source": "prototype",
            "spacegroup_number": 227,
            "spacegroup_symbol": "Fd-3m",
            "disordered_spacegroup_number": 227,
            "disordered_spacegroup_symbol": "Fd-3m",
        },
    )
    lk.write_master("mp-149", "default", make_master(1), [10, 15, 20], [1, 1, 1], {"npx": 10})
    lk.mark_failed("mp-149", "b01", reason="timeout after 3600 s")
    return url


def test_ls_shows_labels_and_status(filled_lake, capsys):
    assert main(["--lake", filled_lake, "lake", "ls"]) == 0
    out = capsys.readouterr().out
    for text in ("mp-149", "Si", "prototype", "Fd-3m", "227", "default", "complete", "failed"):
        assert text in out


def test_show_lists_masters(filled_lake, capsys):
    assert main(["--lake", filled_lake, "lake", "show", "mp-149"]) == 0
    out = capsys.readouterr().out
    assert "Fd-3m" in out and "timeout after 3600 s" in out and "10-20 (3)" in out


def test_verify_exit_codes(filled_lake, capsys):
    assert main(["--lake", filled_lake, "lake", "verify", "--quiet"]) == 0
    assert "0 corrupt, 0 incomplete, 1 failed" in capsys.readouterr().out
    chunk = f"{filled_lake}/masters/mp-149/default/master/c.0.0.0.0"
    with open(chunk, "r+b") as handle:
        handle.write(np.random.default_rng(1).bytes(64))
    assert main(["--lake", filled_lake, "lake", "verify", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "masters/mp-149/default" in out and "corrupt" in out


def test_rm_and_one_line_errors(filled_lake, capsys, tmp_path):
    assert main(["--lake", filled_lake, "lake", "rm", "mp-149", "--variant", "b01"]) == 0
    assert Lake.open(filled_lake).master_status("mp-149", "b01") == "missing"
    capsys.readouterr()
    assert main(["--lake", filled_lake, "lake", "show", "mp-404"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no material 'mp-404'" in err
    assert main(["--lake", str(tmp_path / "absent"), "lake", "ls"]) == 2
    assert "no lake here" in capsys.readouterr().err
    assert main(["--lake", filled_lake, "lake", "show", "bad/id"]) == 2
    assert "invalid material id" in capsys.readouterr().err


def test_rm_on_a_mistyped_lake_creates_nothing(tmp_path, capsys):
    typo = tmp_path / "lakee"
    assert main(["--lake", str(typo), "lake", "rm", "mp-149"]) == 2
    assert "no lake here" in capsys.readouterr().err
    assert not typo.exists()


def test_unreadable_metadata_is_named_not_hidden(filled_lake, capsys):
    """A torn zarr.json leaves the group out of ``ls``/``show``, with one line saying so."""
    (Path(filled_lake) / "masters" / "mp-149" / "default" / "zarr.json").write_text('{"attri')
    capsys.readouterr()
    assert main(["--lake", filled_lake, "lake", "ls"]) == 0
    err = capsys.readouterr().err
    assert "left out 1 group(s) with unreadable metadata: masters/mp-149/default" in err
    assert "lake verify" in err and err.count("\n") == 1
    assert main(["--lake", filled_lake, "lake", "show", "mp-149"]) == 0
    assert "masters/mp-149/default" in capsys.readouterr().err
