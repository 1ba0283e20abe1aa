"""``ebsdlake ingest ...`` end to end through the real CLI entry point."""

from __future__ import annotations

from infra.app.cli import main


def test_cli_prototypes_synthetic_and_errors(tmp_path, capsys, monkeypatch):
    lake = str(tmp_path / "lake")
    assert main(["--lake", lake, "ingest", "prototypes", "--only", "TiC", "Fe"]) == 0
    assert "ingested 2, skipped 0 existing, rejected 0" in capsys.readouterr().out
    assert main(["--lake", lake, "ingest", "synthetic", "--spacegroups", "221,225",
                 "--per-group", "2", "--seed", "0"]) == 0  # fmt: skip
    assert "ingested 4" in capsys.readouterr().out
    assert main(["--lake", lake, "ingest", "synthetic", "--spacegroups", "221,225",
                 "--per-group", "2", "--seed", "0"]) == 0  # fmt: skip
    assert "ingested 0, skipped 4 existing" in capsys.readouterr().out

    assert main(["--lake", lake, "ingest", "synthetic", "--spacegroups", "0-3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["ebsdlake ingest: unknown space group 0 (valid: 1-230)"]

    monkeypatch.delenv("MP_API_KEY", raising=False)
    monkeypatch.delenv("EBSDLAKE_INGEST_MP_API_KEY", raising=False)
    (tmp_path / "empty.toml").write_text("")
    monkeypatch.setenv("EBSDLAKE_CONFIG", str(tmp_path / "empty.toml"))
    assert main(["--lake", lake, "ingest", "mp", "--paper-preset"]) == 2
    assert "set MP_API_KEY or [ingest] mp_api_key" in capsys.readouterr().err

    bad = tmp_path / "bad.cif"
    bad.write_text("not a cif\n")
    assert main(["--lake", lake, "ingest", "cif", str(bad)]) == 2
    captured = capsys.readouterr()
    assert "bad.cif: not a CIF with a unit cell" in captured.err
    assert "Traceback" not in captured.err

    from lake import Lake

    catalog = Lake.open(lake).catalog()
    assert len(catalog) == 6
    tic = catalog[catalog["material_id"] == "proto-TiC"].iloc[0]
    assert tic["formula"] == "TiC" and tic["source"] == "prototype"
