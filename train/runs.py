"""Run storage: where a training run keeps its files, and reading them back.

A run lives under ``runs/<run_id>/`` of the lake's storage (``Lake.run_location``). Ray Train
writes its checkpoints there; the driver writes the small files through ``Lake.put_run_file``:

``config.json`` (the full run configuration, including train/test material ids),
``classes.json`` (label values in logit order), ``metrics.json`` (per-epoch history and final
numbers), ``model.pt`` (the final weights, a torch state dict), and the evaluation outputs.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

import fsspec
import torch

from lake import LakeError
from train.training_errors import TrainingError

CONFIG_FILE = "config.json"
CLASSES_FILE = "classes.json"
METRICS_FILE = "metrics.json"
MODEL_FILE = "model.pt"


def open_lake(lake_url: str, storage_options: dict | None = None, mode: str = "r"):
    """Open the lake at ``lake_url`` (``mode="a"`` to write run files)."""
    from lake import Lake

    return Lake.open(lake_url, storage_options=storage_options or {}, mode=mode)


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
    return json.loads(data)


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
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


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
