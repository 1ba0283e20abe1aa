"""Configuration errors: every key and value of a config file or an ``EBSDLAKE_*`` variable is
checked against the schema (``infra.config.DEFAULTS``), and a bad one is one line naming the
file or variable, the key and the reason; the documented configs still load."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_checks import one_line_error

from infra.app.cli import register_config_sections
from infra.config import DEFAULTS, OPTIONAL_KEYS, ConfigError, load_config

# the application (infra.app.cli) registers the stage sections; these tests load configs directly
register_config_sections()

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, text: str | bytes, name: str = "ebsdlake.toml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_unknown_key_in_a_known_section_names_file_key_and_close_match(tmp_path):
    path = _write(tmp_path, "[simulate]\nnpxx = 40\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert str(info.value) == (
        f"config file {path}: unknown key [simulate] npxx (did you mean npx?)"
    )
    far = _write(tmp_path, "[ray]\nzzz = 1\n", "far.toml")
    with pytest.raises(ConfigError, match=r"unknown key \[ray\] zzz \(known: address, num_cpus\)"):
        load_config(far, environ={})


def test_unknown_environment_key_names_the_variable_and_its_close_match():
    with pytest.raises(ConfigError) as info:
        load_config(environ={"EBSDLAKE_SIMULATE_NPXX": "40"})
    assert str(info.value) == (
        "EBSDLAKE_SIMULATE_NPXX: unknown key [simulate] npxx (did you mean EBSDLAKE_SIMULATE_NPX?)"
    )


def test_other_ebsdlake_variables_are_not_config_keys():
    cfg = load_config(
        environ={
            "EBSDLAKE_RAY_LOG_LEVEL": "INFO",  # set by `ebsdlake -v` for Ray's logging
            "EBSDLAKE_NI_MASTER": "/data/ni.h5",  # the physics check's reference file
            "EBSDLAKE_GPU_PYTHON": "python3",
        }
    )
    assert cfg.overrides == () and "log_level" not in cfg.ray


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('[simulate]\nnpx = "forty"', "[simulate] npx = 'forty': expected an integer"),
        ('[simulate]\nvoltage_kv = "20"', "[simulate] voltage_kv = '20': expected a number"),
        ("[simulate]\nnpx = 40.5", "[simulate] npx = 40.5: expected an integer"),
        ('[simulate]\nbethe = [8, "50"]', "[simulate] bethe = [8, '50']: expected a list"),
        ('[ray]\nnum_cpus = "two"', "[ray] num_cpus = 'two': expected an integer"),
        ('[train]\nepochs = "ten"', "[train] epochs = 'ten': expected an integer"),
        ("[train]\nuse_gpu = 1", "[train] use_gpu = 1: expected true or false"),
        ("[train]\nepochs = true", "[train] epochs = True: expected an integer"),
        ('[ingest]\nsymprec = "abc"', "[ingest] symprec = 'abc': expected a number"),
        ('[lake]\nstorage_options = "abc"', "[lake] storage_options = 'abc': expected a table"),
        ("[lake]\nurl = 5", "[lake] url = 5: expected a string"),
    ],
)
def test_wrong_types_name_file_key_and_expectation(tmp_path, line, message):
    path = _write(tmp_path, line + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert str(info.value).startswith(f"config file {path}: {message}")


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("EBSDLAKE_SIMULATE_NPX", "abc", "EBSDLAKE_SIMULATE_NPX='abc': expected an integer"),
        ("EBSDLAKE_SIMULATE_DMIN_NM", "small", "EBSDLAKE_SIMULATE_DMIN_NM='small': expected a"),
        ("EBSDLAKE_TRAIN_USE_GPU", "1", "EBSDLAKE_TRAIN_USE_GPU='1': expected true or false"),
        ("EBSDLAKE_LAKE_STORAGE_OPTIONS", "abc", "EBSDLAKE_LAKE_STORAGE_OPTIONS='abc': expected"),
    ],
)
def test_wrong_environment_values_name_the_variable(name, raw, message):
    with pytest.raises(ConfigError) as info:
        load_config(environ={name: raw})
    assert str(info.value).startswith(message)


def test_legit_values_keep_working(tmp_path):
    path = _write(
        tmp_path,
        '[lake]\nurl = "s3://b/lake"\nstorage_options = { anon = true }\n'
        '[ray]\naddress = "auto"\nnum_cpus = 2\n'
        '[ingest]\nmp_api_key = ""\nsymprec = 0.1\n'
        "[simulate]\nvoltage_kv = 15\ntime_limit_s = 600\nbethe = [4, 8.0, 50]\n"
        'mc_electrons = 1000\nprecision = "single"\nmc_file = ""\n'
        "[train]\nepochs = 3\nlr = 1\nuse_gpu = true\nnum_workers = 2\n",
    )
    env = {
        "EBSDLAKE_LAKE_URL": "2024",  # a folder named 2024 stays a string
        "EBSDLAKE_SIMULATE_BETHE": "[4, 8, 50]",
        "EBSDLAKE_SIMULATE_DEVICE": "cuda:1",
        "EBSDLAKE_TRAIN_USE_GPU": "false",
        "EBSDLAKE_LAKE_STORAGE_OPTIONS": "{ anon = true }",
    }
    cfg = load_config(path, environ=env)
    assert cfg.lake.url == "2024" and cfg.lake.storage_options == {"anon": True}
    assert cfg.simulate.voltage_kv == 15.0 and isinstance(cfg.simulate.voltage_kv, float)
    assert cfg.simulate.time_limit_s == 600.0 and cfg.simulate.mc_electrons == 1000
    assert cfg.simulate.bethe == [4, 8, 50] and cfg.simulate.device == "cuda:1"
    assert cfg.train.lr == 1.0 and cfg.train.use_gpu is False and cfg.train.epochs == 3
    assert cfg.origin("simulate", "npx") == "[simulate] npx"
    assert cfg.origin("train", "epochs") == f"config file {path}: [train] epochs"
    assert cfg.origin("lake", "url") == "EBSDLAKE_LAKE_URL"


def test_optional_simulate_keys_are_simulation_settings():
    import dataclasses

    from simulate.settings import SimulationSettings

    fields = {f.name for f in dataclasses.fields(SimulationSettings)}
    assert set(OPTIONAL_KEYS["simulate"]) <= fields
    assert not set(OPTIONAL_KEYS["simulate"]) & set(DEFAULTS["simulate"])


def test_simulate_defaults_are_the_settings_defaults():
    """Each [simulate] default is read off SimulationSettings / FarmOptions (written once)."""
    from simulate.farm import FarmOptions
    from simulate.settings import SimulationSettings

    paper, farm = SimulationSettings(), FarmOptions()
    section = DEFAULTS["simulate"]
    assert section["npx"] == paper.npx and section["dmin_nm"] == paper.dmin_nm
    assert section["bethe"] == [paper.bethe_strong, paper.bethe_weak, paper.bethe_cutoff]
    assert section["time_limit_s"] == farm.time_limit_s
    assert section["max_retries"] == farm.max_retries
    assert SimulationSettings.from_config(section) == paper.refine()
    assert list(DEFAULTS) == ["lake", "ray", "ingest", "simulate", "train"]


def _documented_tomls() -> list[tuple[str, str]]:
    blocks = []
    for path in [ROOT / "README.md", *sorted(ROOT.glob("docs/*.md"))]:
        found = re.findall(r"```toml\n(.*?)```", path.read_text(), re.S)
        blocks += [(f"{path.name}#{i}", block) for i, block in enumerate(found)]
    return blocks


@pytest.mark.parametrize(("where", "text"), _documented_tomls())
def test_documented_configs_load(tmp_path, where, text):
    cfg = load_config(_write(tmp_path, text), environ={})
    assert cfg.source is not None, where


def test_binary_file_names_the_file(tmp_path, capsys):
    path = _write(tmp_path, b"\x89HDF\r\n\x1a\n\xff\xfe\x00binary", "binary.toml")
    with pytest.raises(ConfigError, match=r"binary\.toml: not UTF-8 text"):
        load_config(path, environ={})
    line = one_line_error(capsys, ["--config", str(path), "config", "show"])
    assert "binary.toml: not UTF-8" in line


def test_directory_is_named_as_a_directory(tmp_path, capsys, monkeypatch):
    line = one_line_error(capsys, ["--config", str(tmp_path), "config", "show"])
    assert line.endswith(f"config file {tmp_path}: is a directory, not a TOML file")
    monkeypatch.setenv("EBSDLAKE_CONFIG", str(tmp_path))
    with pytest.raises(ConfigError, match=r"\(from \$EBSDLAKE_CONFIG\): is a directory"):
        load_config()


def test_cli_prints_a_bad_value_as_one_line(tmp_path, capsys, monkeypatch):
    path = _write(tmp_path, '[simulate]\nnpx = "forty"\n')
    line = one_line_error(capsys, ["--config", str(path), "config", "show"])
    assert (
        line
        == f"ebsdlake config: config file {path}: [simulate] npx = 'forty': expected an integer"
    )
    monkeypatch.setenv("EBSDLAKE_SIMULATE_NPX", "abc")
    line = one_line_error(capsys, ["config", "show"])
    assert line == "ebsdlake config: EBSDLAKE_SIMULATE_NPX='abc': expected an integer"


def test_unknown_lake_protocol_names_the_url_and_where_it_came_from(capsys, monkeypatch):
    line = one_line_error(capsys, ["--lake", "bogus://x", "lake", "ls"])
    assert "lake URL bogus://x (--lake): unknown storage protocol 'bogus'" in line
    monkeypatch.setenv("EBSDLAKE_LAKE_URL", "bogus://y")
    line = one_line_error(capsys, ["lake", "ls"])
    assert "lake URL bogus://y (EBSDLAKE_LAKE_URL): unknown storage protocol" in line
