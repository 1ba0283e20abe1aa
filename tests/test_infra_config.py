"""Configuration: defaults, file, environment overrides, redaction, and the CLI around it."""

from __future__ import annotations

import json

import pytest

from infra.app.cli import main, register_config_sections
from infra.config import ConfigError, load_config

# the application (infra.app.cli) registers the stage sections; these tests load configs directly
register_config_sections()


def test_defaults_are_the_paper_settings_and_a_local_lake():
    cfg = load_config(environ={})
    assert cfg.source is None
    assert cfg.lake.url == "./lake.zarr"
    assert cfg.simulate.npx == 300
    assert cfg.simulate.dmin_nm == pytest.approx(0.05)
    assert cfg.simulate.bethe == [8.0, 50.0, 100.0]
    assert cfg.train.lr == pytest.approx(1e-3)


def test_file_then_environment_override(tmp_path):
    path = tmp_path / "ebsdlake.toml"
    path.write_text('[lake]\nurl = "s3://bucket/lake"\n[simulate]\nnpx = 120\n')
    cfg = load_config(path, environ={"EBSDLAKE_SIMULATE_NPX": "64", "EBSDLAKE_RAY_ADDRESS": "auto"})
    assert cfg.source == path
    assert cfg.lake.url == "s3://bucket/lake"
    assert cfg.simulate.npx == 64  # parsed as a TOML integer, not a string
    assert cfg.ray.address == "auto"
    assert cfg.simulate.dmin_nm == pytest.approx(0.05)  # untouched keys keep defaults


def test_bad_files_name_the_file_and_reason(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[lake\nurl=1")
    with pytest.raises(ConfigError, match="bad.toml.*not valid TOML"):
        load_config(bad, environ={})
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[lakes]\nurl='x'\n")
    with pytest.raises(ConfigError, match=r"unknown section \[lakes\]"):
        load_config(unknown, environ={})
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml", environ={})


def test_config_show_hides_secrets(tmp_path, monkeypatch, capsys):
    path = tmp_path / "ebsdlake.toml"
    path.write_text(
        '[ingest]\nmp_api_key = "SECRETKEY123"\n'
        '[lake.storage_options]\nsecret = "AWSSECRET"\nendpoint_url = "http://127.0.0.1:9000"\n'
    )
    monkeypatch.chdir(tmp_path)
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "SECRETKEY123" not in out and "AWSSECRET" not in out
    shown = json.loads("\n".join(line for line in out.splitlines() if not line.startswith("#")))
    assert shown["ingest"]["mp_api_key"] == "***"
    assert shown["lake"]["storage_options"]["endpoint_url"] == "http://127.0.0.1:9000"


def test_cli_lists_every_stage(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for stage in ("ingest", "simulate", "lake", "train", "evaluate", "predict", "demo", "config"):
        assert stage in out, stage


def test_bad_config_is_one_line_on_stderr(tmp_path, capsys):
    assert main(["--config", str(tmp_path / "nope.toml"), "config", "show"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.toml" in err[0]
