"""Effective configuration: embedded defaults, ``ebsdlake.toml`` and environment overrides.

The precedence is defaults < config file < environment variables < command-line flags (the CLI
applies the last). Environment variables are named ``EBSDLAKE_<SECTION>_<KEY>`` (for example
``EBSDLAKE_LAKE_URL=s3://bucket/lake`` or ``EBSDLAKE_RAY_ADDRESS=auto``); values are parsed as
TOML scalars when they parse, else kept as strings.
"""

from __future__ import annotations

import copy
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_ENV = "EBSDLAKE_CONFIG"
DEFAULT_CONFIG_NAME = "ebsdlake.toml"
ENV_PREFIX = "EBSDLAKE_"
SECRET_MARKERS = ("key", "secret", "token", "password", "credential")

#: The embedded defaults: local lake, local Ray, the dynamical engine at the paper's settings.
DEFAULTS: dict[str, dict[str, Any]] = {
    "lake": {"url": "./lake.zarr", "storage_options": {}},
    "ray": {"address": "", "num_cpus": 0},
    "ingest": {"mp_api_key": "", "symprec": 0.01},
    "simulate": {
        "engine": "dynamical",
        "device": "auto",
        "voltage_kv": 20.0,
        "energy_min_kev": 10.0,
        "energy_max_kev": 20.0,
        "energy_step_kev": 1.0,
        "sample_tilt_deg": 70.0,
        "npx": 300,
        "dmin_nm": 0.05,
        "bethe": [8.0, 50.0, 100.0],
        "depth_max_nm": 100.0,
        "depth_step_nm": 1.0,
        "num_electrons": 2_000_000_000,
        "time_limit_s": 43_200,
        "max_retries": 2,
    },
    "train": {
        "label": "disordered_spacegroup_number",
        "model": "resnet18",
        "epochs": 10,
        "batch_size": 128,
        "lr": 1e-3,
        "momentum": 0.9,
        "lr_step_epochs": 7,
        "lr_gamma": 0.9,
        "image_size": 224,
        "num_workers": 1,
        "use_gpu": False,
        "folds": 5,
    },
}


class ConfigError(ValueError):
    """A configuration file or override that cannot be used."""


class Section(dict):
    """A configuration section: a dict whose keys also read as attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


@dataclass(frozen=True)
class Config:
    """The effective configuration, with where it came from.

    Attributes
    ----------
    sections
        Section name to its values, as attribute-access dicts.
    source
        The config file that was read, or ``None`` for the embedded defaults only.
    """

    sections: dict[str, Section]
    source: Path | None = None
    overrides: tuple[str, ...] = field(default_factory=tuple)

    def __getattr__(self, name: str) -> Section:
        sections = object.__getattribute__(self, "sections")
        if name in sections:
            return sections[name]
        raise AttributeError(name)

    def to_dict(self, *, redact: bool = True) -> dict[str, dict[str, Any]]:
        """Plain nested dict; secrets replaced by ``"***"`` unless ``redact`` is false."""
        out = {name: dict(values) for name, values in self.sections.items()}
        return _redact(out) if redact else out


def _redact(value: Any, key: str = "") -> Any:
    if isinstance(value, Mapping):
        return {k: _redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, key) for v in value]
    if value and any(marker in key.lower() for marker in SECRET_MARKERS):
        return "***"
    return value


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _parse_env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def find_config_file(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the config file to read: ``explicit``, ``$EBSDLAKE_CONFIG`` or ``./ebsdlake.toml``."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file {path}: not found")
        return path
    env = os.environ.get(CONFIG_ENV)
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"config file {path} (from ${CONFIG_ENV}): not found")
        return path
    local = Path(DEFAULT_CONFIG_NAME)
    return local if local.is_file() else None


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Read the effective configuration.

    Parameters
    ----------
    path
        A TOML file; when ``None`` the file named by ``$EBSDLAKE_CONFIG`` or ``./ebsdlake.toml``
        is read if present.
    environ
        Environment to take ``EBSDLAKE_<SECTION>_<KEY>`` overrides from (default ``os.environ``).
    """
    values = copy.deepcopy(DEFAULTS)
    source = find_config_file(path)
    if source is not None:
        try:
            data = tomllib.loads(source.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {source}: not valid TOML ({exc})") from None
        for name, section in data.items():
            if not isinstance(section, dict):
                raise ConfigError(
                    f"config file {source}: top-level key {name!r} must be a [section]"
                )
            if name not in values:
                raise ConfigError(
                    f"config file {source}: unknown section [{name}]; known: {', '.join(values)}"
                )
        _merge(values, data)
    env = os.environ if environ is None else environ
    overrides = []
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section, _, key = rest.partition("_")
        if section in values and key:
            values[section][key] = _parse_env_value(raw)
            overrides.append(name)
    sections = {name: Section(section) for name, section in values.items()}
    return Config(sections=sections, source=source, overrides=tuple(sorted(overrides)))
