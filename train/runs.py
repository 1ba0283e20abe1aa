"""Run storage: where a training run keeps its files, and reading them back.

A run lives under ``runs/<run_id>/`` of the lake's storage (``Lake.run_location``). Ray Train
writes its checkpoints there; the driver writes the small files through ``Lake.put_run_file``:

``config.json`` (the full run configuration, including train/test material ids),
``classes.json`` (label values in logit order), ``metrics.json`` (per-epoch history and final
numbers), ``model.pt`` (the final weights, a torch state dict), and the evaluation outputs.

``model.pt`` is written last, so a run with a model is *finished*; a run folder without one is
*unfinished* (interrupted) and is resumed from its last Ray Train checkpoint when trained again
with the same settings (:func:`check_run_settings` refuses other settings before anything is
overwritten). Every function here reads an existing lake: none creates one at a mistyped URL.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

import fsspec
import torch

from lake import LakeError, LakeNotFoundError
from train.training_errors import TrainingError, one_line

CONFIG_FILE = "config.json"
CLASSES_FILE = "classes.json"
METRICS_FILE = "metrics.json"
MODEL_FILE = "model.pt"

#: Settings that change where or how robustly a run executes, not what it learns: resuming an
#: interrupted run with other values of these is still the same run.
RUNTIME_SETTINGS = ("config.fault", "config.max_failures", "config.use_gpu", "lake_url")


def open_lake(lake_url: str, storage_options: dict | None = None, mode: str = "r"):
    """Open the existing lake at ``lake_url`` (``mode="a"`` or ``"r+"`` to write run files
    into it).

    Raises
    ------
    lake.LakeNotFoundError
        No lake at ``lake_url`` ("no lake here ..."): a mistyped URL never creates one.
    """
    from lake import Lake

    existing = "r" if mode == "r" else "r+"  # r+: writes, but never creates a lake
    return Lake.open(lake_url, storage_options=storage_options or {}, mode=existing)


def put_json(lake, run_id: str, name: str, obj: Any) -> None:
    """Write ``obj`` as indented JSON to the run file ``name``."""
    data = json.dumps(obj, indent=2, sort_keys=True, default=_json_default).encode()
    lake.put_run_file(run_id, name, data)


def as_stored_json(obj: Any) -> Any:
    """``obj`` as it reads back from a run file (tuples as lists, numpy scalars as numbers), to
    compare a configuration with a stored one."""
    return json.loads(json.dumps(obj, sort_keys=True, default=_json_default))


def get_json(lake, run_id: str, name: str) -> Any:
    """Read the JSON run file ``name``; a missing run or file is a :class:`TrainingError`."""
    try:
        data = lake.get_run_file(run_id, name)
    except (LakeError, FileNotFoundError, KeyError, ValueError) as exc:
        raise TrainingError(f"run {run_id!r}: cannot read {name} ({exc})") from None
    return get_json_bytes(run_id, name, data)


def put_model(lake, run_id: str, state: dict[str, Any]) -> None:
    """Write a dict of state dicts (``torch.save`` bytes) as the run's ``model.pt``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    lake.put_run_file(run_id, MODEL_FILE, buffer.getvalue())


def get_model(lake, run_id: str) -> dict[str, Any]:
    """Read the run's ``model.pt`` back to a dict of CPU tensors."""
    try:
        data = lake.get_run_file(run_id, MODEL_FILE)
    except (LakeError, FileNotFoundError, KeyError, ValueError) as exc:
        raise TrainingError(f"run {run_id!r}: no trained model ({exc})") from None
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        raise TrainingError(
            f"run {run_id!r}: {MODEL_FILE} is unreadable ({one_line(exc)})"
        ) from None
    if not isinstance(state, dict):
        raise TrainingError(f"run {run_id!r}: {MODEL_FILE} holds no dict of state dicts")
    return state


def run_folder(lake, run_id: str) -> str:
    """URL of the run's folder ``runs/<run_id>`` (for messages that say what to remove)."""
    return lake.run_location(run_id)[0]


def has_run_file(lake, run_id: str, name: str) -> bool:
    """Whether the run folder holds ``name`` (without reading it: ``model.pt`` can be large)."""
    url, options = lake.run_location(run_id)
    fs, path = fsspec.url_to_fs(url, **(options or {}))
    fs.invalidate_cache(path)
    return fs.exists(f"{path.rstrip('/')}/{name}")


def run_status(lake, run_id: str) -> str:
    """``"missing"`` (no folder), ``"finished"`` (has ``model.pt``) or ``"unfinished"``."""
    if run_id not in lake.run_ids():
        return "missing"
    return "finished" if has_run_file(lake, run_id, MODEL_FILE) else "unfinished"


def require_run(lake, run_id: str) -> None:
    """Raise :class:`TrainingError` when the lake has no run ``run_id``."""
    if run_id not in lake.run_ids():
        raise TrainingError(f"run {run_id!r} does not exist in {lake.url}")


def refuse_finished(lake, run_id: str) -> None:
    """Raise :class:`TrainingError` when run ``run_id`` exists and is finished (has its model)."""
    if run_status(lake, run_id) == "finished":
        raise TrainingError(
            f"run {run_id!r} already exists in {lake.url}; choose another --run-id or remove it "
            f"({run_folder(lake, run_id)})"
        )


def settings_differences(stored: Any, wanted: Any, ignore: tuple[str, ...] = ()) -> list[str]:
    """What differs between a stored run configuration and a wanted one, one item per key.

    Keys of ``config`` (the training settings) are compared one by one as ``config.<key>``;
    scalars show ``stored -> wanted``, longer values (material lists) just their name.
    """
    if not isinstance(stored, dict) or not isinstance(wanted, dict):
        return [] if stored == wanted else ["the whole configuration"]
    differences = []
    for key in sorted(set(stored) | set(wanted)):
        old, new = stored.get(key), wanted.get(key)
        if key == "config" and isinstance(old, dict) and isinstance(new, dict):
            differences += _changed(old, new, "config.", ignore)
        elif key not in ignore and old != new:
            differences.append(_shown(key, old, new))
    return differences


def _changed(old: dict, new: dict, prefix: str, ignore: tuple[str, ...]) -> list[str]:
    """``prefix<key>`` items of two flat dicts that differ (ignoring ``ignore``)."""
    names = sorted(set(old) | set(new))
    return [
        _shown(prefix + name, old.get(name), new.get(name))
        for name in names
        if prefix + name not in ignore and old.get(name) != new.get(name)
    ]


def _shown(name: str, old: Any, new: Any) -> str:
    """``name old -> new`` for short scalars, else ``name``."""
    if isinstance(old, (list, dict)) or isinstance(new, (list, dict)):
        return name
    return f"{name} {old!r} -> {new!r}"


def check_run_settings(
    lake,
    run_id: str,
    run_config: dict[str, Any],
    classes: list | None = None,
    ignore: tuple[str, ...] = (),
) -> str:
    """Check that run ``run_id`` may be trained with ``run_config``; return its status.

    A missing run may be created; an existing one (finished or interrupted) only with the
    same ``config.json`` (and ``classes.json`` when ``classes`` is given), apart from
    :data:`RUNTIME_SETTINGS` and ``ignore``. Nothing is written.

    Returns
    -------
    str
        ``"missing"``, ``"unfinished"`` (resume it) or ``"finished"`` (same settings).

    Raises
    ------
    TrainingError
        The run exists with other settings (naming them), or without a readable config.
    """
    status = run_status(lake, run_id)
    if status == "missing":
        return status
    remedy = f"choose another --run-id or remove it ({run_folder(lake, run_id)})"
    try:
        stored = lake.get_run_file(run_id, CONFIG_FILE)
    except LakeNotFoundError:
        raise TrainingError(
            f"run {run_id!r} exists in {lake.url} without {CONFIG_FILE}; {remedy}"
        ) from None
    differences = settings_differences(
        get_json_bytes(run_id, CONFIG_FILE, stored),
        as_stored_json(run_config),
        RUNTIME_SETTINGS + tuple(ignore),
    )
    stored_classes = get_json(lake, run_id, CLASSES_FILE) if classes is not None else None
    if classes is not None and stored_classes != as_stored_json(list(classes)):
        differences.append("classes")
    if differences:
        shown = ", ".join(differences[:4]) + (" ..." if len(differences) > 4 else "")
        if status == "finished":
            what = "already exists"
        else:
            what, remedy = "exists unfinished", f"resume it with its own settings, {remedy}"
        raise TrainingError(
            f"run {run_id!r} {what} in {lake.url} with other settings ({shown}); {remedy}"
        )
    return status


def get_json_bytes(run_id: str, name: str, data: bytes) -> Any:
    """Parse the bytes of the JSON run file ``name`` (a :class:`TrainingError` if invalid)."""
    try:
        return json.loads(data)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise TrainingError(f"run {run_id!r}: {name} is not valid JSON ({one_line(exc)})") from None


def ray_storage(lake, run_id: str):
    """Return ``(storage_path, storage_filesystem, name)`` for ``ray.train.RunConfig``.

    Ray writes its checkpoints to ``<storage_path>/<name>``, which is the run's folder. Local
    lakes give a plain path; remote ones (``s3://``) a pyarrow filesystem wrapping the same
    fsspec filesystem, with ``storage_path`` stripped of its protocol as Ray requires.
    """
    url, options = lake.run_location(run_id)
    parent, _, name = url.rstrip("/").rpartition("/")
    protocol, _, rest = parent.partition("://")
    if not rest or protocol in ("file", "local"):
        local = rest if rest else parent
        return os.path.abspath(local), None, name
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    fs = fsspec.filesystem(protocol, **(options or {}))
    return rest, PyFileSystem(FSSpecHandler(fs)), name


def _json_default(obj: Any) -> Any:
    """Make numpy scalars, tuples and paths JSON-serialisable."""
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
