"""Effective configuration: embedded defaults, ``ebsdlake.toml`` and environment overrides.

The precedence is defaults < config file < environment variables < command-line flags (the CLI
applies the last). Environment variables are named ``EBSDLAKE_<SECTION>_<KEY>`` (for example
``EBSDLAKE_LAKE_URL=s3://bucket/lake`` or ``EBSDLAKE_RAY_ADDRESS=auto``); values of string
keys are taken as they are, others are parsed as TOML values (``64``, ``true``,
``[8, 50, 100]``, ``{ anon = true }``).

:data:`DEFAULTS` is also the schema: a section accepts its keys there (and those of
:data:`OPTIONAL_KEYS`), each value of the type of its default (an integer where the default is
one, a number where it is a float, ``true``/``false`` where it is a bool...). Anything else is
a :class:`ConfigError` naming the file or environment variable, the key and the reason.
"""

from __future__ import annotations

import copy
import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lake.errors import EbsdlakeError

CONFIG_ENV = "EBSDLAKE_CONFIG"
DEFAULT_CONFIG_NAME = "ebsdlake.toml"
ENV_PREFIX = "EBSDLAKE_"
SECRET_MARKERS = ("key", "secret", "token", "password", "credential")

#: The order sections are listed in (``config show``, messages), registered ones included.
SECTION_ORDER = ("lake", "ray", "ingest", "simulate", "train")

#: The embedded defaults: local lake, local Ray, ingest and training. A stage whose defaults
#: live on its settings dataclass adds its section with :func:`register_section` (the
#: application registers ``[simulate]`` and ``[train]`` from the stages' ``config_section``).
DEFAULTS: dict[str, dict[str, Any]] = {
    "lake": {"url": "./lake.zarr", "storage_options": {}},
    "ray": {"address": "", "num_cpus": 0},
    "ingest": {"mp_api_key": "", "symprec": 0.01},
}


#: Keys a section accepts besides those of :data:`DEFAULTS`: settings without a default value
#: (``SimulationSettings`` reads those of ``[simulate]``), with the type of their values.
OPTIONAL_KEYS: dict[str, dict[str, type]] = {}
#: ``EBSDLAKE_*`` variables that are not overrides of a config key.
NOT_OVERRIDES = frozenset({CONFIG_ENV, "EBSDLAKE_RAY_LOG_LEVEL"})
#: What a value of each default's type must be, for the error messages.
_EXPECTED = {
    bool: "expected true or false",
    int: "expected an integer",
    float: "expected a number",
    str: "expected a string",
    dict: "expected a table, e.g. { anon = true }",
    list: "expected a list of numbers, e.g. [8, 50, 100]",
}


class ConfigError(EbsdlakeError, ValueError):
    """A configuration file or override that cannot be used."""


def register_section(
    name: str, defaults: Mapping[str, Any], optional: Mapping[str, type] | None = None
) -> None:
    """Add (or replace) a stage's section: its keys with their defaults, and ``optional``
    keys without a default (key to value type). Idempotent; call before :func:`load_config`."""
    DEFAULTS[name] = copy.deepcopy(dict(defaults))
    OPTIONAL_KEYS[name] = dict(optional or {})
    rank = {section: index for index, section in enumerate(SECTION_ORDER)}
    ordered = sorted(DEFAULTS.items(), key=lambda item: rank.get(item[0], len(rank)))
    DEFAULTS.clear()
    DEFAULTS.update(ordered)


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
    origins: dict[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Section:
        sections = object.__getattribute__(self, "sections")
        if name in sections:
            return sections[name]
        raise AttributeError(name)

    def origin(self, section: str, key: str) -> str:
        """Where ``[section] key`` was set, for messages: the environment variable, the file
        (``"config file ebsdlake.toml: [simulate] npx"``) or ``"[simulate] npx"`` for a
        default."""
        return self.origins.get(f"{section}.{key}", f"[{section}] {key}")

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


def schema(section: str) -> dict[str, type]:
    """Key to value type of one known section: :data:`DEFAULTS` plus :data:`OPTIONAL_KEYS`."""
    known = {key: type(value) for key, value in DEFAULTS[section].items()}
    return {**known, **OPTIONAL_KEYS.get(section, {})}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def checked_value(value: Any, kind: type) -> Any:
    """``value`` if it is of ``kind`` (ints accepted and made floats where ``kind`` is float).

    Raises
    ------
    TypeError
        With the one-line expectation (``"expected an integer"``) as message.
    """
    if kind is float and _is_number(value):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is list and isinstance(value, list) and all(_is_number(v) for v in value):
        return value
    if kind in (bool, str, dict) and isinstance(value, kind):
        return value
    raise TypeError(_EXPECTED[kind])


def _unknown_key(section: str, key: str, *, env: bool = False) -> str:
    """``unknown key [section] key`` with the closest known key (spelled as an environment
    variable when ``env``), else the known keys."""
    known = list(schema(section))
    close = difflib.get_close_matches(key, known, n=1)
    if not close:
        return f"unknown key [{section}] {key} (known: {', '.join(known)})"
    suggestion = f"{ENV_PREFIX}{section}_{close[0]}".upper() if env else close[0]
    return f"unknown key [{section}] {key} (did you mean {suggestion}?)"


def _check_file_values(source: Path, data: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` on a section, key or value of ``data`` the schema lacks."""
    where = f"config file {source}"
    for name, section in data.items():
        if not isinstance(section, dict):
            raise ConfigError(f"{where}: top-level key {name!r} must be a [section]")
        if name not in DEFAULTS:
            raise ConfigError(f"{where}: unknown section [{name}]; known: {', '.join(DEFAULTS)}")
        known = schema(name)
        for key, value in section.items():
            if key not in known:
                raise ConfigError(f"{where}: {_unknown_key(name, key)}")
            try:
                section[key] = checked_value(value, known[key])
            except TypeError as exc:
                raise ConfigError(f"{where}: [{name}] {key} = {value!r}: {exc}") from None


def _env_value(name: str, raw: str, kind: type) -> Any:
    """An environment override's value: strings as they are, anything else parsed as TOML."""
    if kind is str:
        return raw
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    try:
        return checked_value(value, kind)
    except TypeError as exc:
        raise ConfigError(f"{name}={raw!r}: {exc}") from None


def _env_overrides(env: Mapping[str, str]) -> dict[str, tuple[str, str, Any]]:
    """``EBSDLAKE_<SECTION>_<KEY>`` overrides of known sections: variable -> (section, key,
    value). Variables of other prefixes (``EBSDLAKE_NI_MASTER``) are not config keys."""
    out = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name in NOT_OVERRIDES:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("_")
        if section not in DEFAULTS or not key:
            continue
        known = schema(section)
        if key not in known:
            raise ConfigError(f"{name}: {_unknown_key(section, key, env=True)}")
        out[name] = (section, key, _env_value(name, raw, known[key]))
    return out


def _config_path(path: Path, how: str = "") -> Path:
    """``path`` if it is a file; :class:`ConfigError` when it is missing or a directory."""
    if path.is_dir():
        raise ConfigError(f"config file {path}{how}: is a directory, not a TOML file")
    if not path.is_file():
        raise ConfigError(f"config file {path}{how}: not found")
    return path


def find_config_file(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the config file to read: ``explicit``, ``$EBSDLAKE_CONFIG`` or ``./ebsdlake.toml``."""
    if explicit:
        return _config_path(Path(explicit))
    env = os.environ.get(CONFIG_ENV)
    if env:
        return _config_path(Path(env), f" (from ${CONFIG_ENV})")
    local = Path(DEFAULT_CONFIG_NAME)
    return local if local.is_file() else None


def read_config_file(source: Path) -> dict[str, Any]:
    """The checked sections of one TOML config file (see :func:`load_config`)."""
    try:
        text = source.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {source}: not UTF-8 text (byte {exc.start}); a TOML file is expected"
        ) from None
    except OSError as exc:
        raise ConfigError(f"config file {source}: cannot read ({exc.strerror or exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {source}: not valid TOML ({exc})") from None
    _check_file_values(source, data)
    return data


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

    Raises
    ------
    ConfigError
        The file is missing, a directory, not UTF-8 or not TOML; or a section, key or value
        (file or environment) is not in the schema (:data:`DEFAULTS`). One line naming the
        file or variable, the key and the reason.
    """
    values = copy.deepcopy(DEFAULTS)
    origins: dict[str, str] = {}
    source = find_config_file(path)
    if source is not None:
        data = read_config_file(source)
        _merge(values, data)
        for name, section in data.items():
            origins.update(
                {f"{name}.{key}": f"config file {source}: [{name}] {key}" for key in section}
            )
    env = os.environ if environ is None else environ
    overrides = _env_overrides(env)
    for name, (section, key, value) in overrides.items():
        values[section][key] = value
        origins[f"{section}.{key}"] = name
    sections = {name: Section(section) for name, section in values.items()}
    return Config(
        sections=sections,
        source=source,
        overrides=tuple(sorted(overrides)),
        origins=origins,
    )
