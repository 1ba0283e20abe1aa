"""Training-run folders ``runs/<run_id>/``: plain files (checkpoints, metrics), not Zarr."""

from __future__ import annotations

from lake.errors import LakeInputError, LakeNotFoundError
from lake.layout import RUNS, run_path
from lake.store import StoreHandle, translate_errors


def put_run_file(handle: StoreHandle, run_id: str, name: str, data: bytes) -> None:
    """Write ``data`` to ``runs/<run_id>/<name>`` in one write (replacing any old file)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise LakeInputError(
            f"run file {run_id}/{name}: data must be bytes, got {type(data).__name__}"
        )
    path = handle.path(f"{run_path(run_id)}/{name}")
    with translate_errors(handle.url, f"writing run file {run_id}/{name}"):
        handle.fs.pipe_file(path, bytes(data))


def get_run_file(handle: StoreHandle, run_id: str, name: str) -> bytes:
    """Read ``runs/<run_id>/<name>``; :class:`LakeNotFoundError` when absent."""
    path = handle.path(f"{run_path(run_id)}/{name}")
    with translate_errors(handle.url, f"reading run file {run_id}/{name}"):
        handle.fs.invalidate_cache(path)
        try:
            return bytes(handle.fs.cat_file(path))
        except FileNotFoundError:
            raise LakeNotFoundError(f"{handle.url}: run {run_id!r} has no file {name!r}") from None


def run_ids(handle: StoreHandle) -> list[str]:
    """Ids of every run folder, sorted."""
    return handle.list_children(RUNS)


def has_run_file(handle: StoreHandle, run_id: str, name: str) -> bool:
    """Whether ``runs/<run_id>/<name>`` exists (without reading it: weights can be large)."""
    path = handle.path(f"{run_path(run_id)}/{name}")
    with translate_errors(handle.url, f"looking up run file {run_id}/{name}"):
        handle.fs.invalidate_cache(path)
        return bool(handle.fs.exists(path))


def remove_run(handle: StoreHandle, run_id: str) -> None:
    """Delete ``runs/<run_id>/`` with every file in it; :class:`LakeNotFoundError` if absent."""
    if run_id not in run_ids(handle):
        raise LakeNotFoundError(f"{handle.url}: no run {run_id!r} to remove")
    handle.remove_tree(run_path(run_id))


def run_entries(handle: StoreHandle, run_id: str) -> dict[str, float | None]:
    """Name -> modification time (epoch seconds, ``None`` when the store does not say) of each
    file and folder directly in ``runs/<run_id>/`` (one listing; empty when absent)."""
    path = handle.path(run_path(run_id))
    with translate_errors(handle.url, f"listing run {run_id}"):
        handle.fs.invalidate_cache(path)
        try:
            entries = handle.fs.ls(path, detail=True)
        except FileNotFoundError:
            return {}
    return {e["name"].rstrip("/").rsplit("/", 1)[-1]: _timestamp(e) for e in entries}


def _timestamp(entry: dict) -> float | None:
    """An fsspec listing entry's modification time as epoch seconds (local: ``mtime``,
    S3: ``LastModified``, memory: ``created``)."""
    for key in ("mtime", "LastModified", "created"):
        value = entry.get(key)
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
        if isinstance(value, int | float):
            return float(value)
    return None


def run_storage(url: str, options: dict | None) -> tuple[str, object | None, str]:
    """``(storage_path, storage_filesystem, name)`` for Ray Train's ``RunConfig`` so that Ray
    writes checkpoints into the run folder at ``url``.

    Local lakes give a plain absolute path and no filesystem; remote ones (``s3://``) a pyarrow
    filesystem wrapping the same fsspec filesystem, with the path stripped of its protocol as
    Ray requires.
    """
    import os

    import fsspec

    parent, _, name = url.rstrip("/").rpartition("/")
    protocol, _, rest = parent.partition("://")
    if not rest or protocol in ("file", "local"):
        return os.path.abspath(rest if rest else parent), None, name
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    fs = fsspec.filesystem(protocol, **(options or {}))
    return rest, PyFileSystem(FSSpecHandler(fs)), name
