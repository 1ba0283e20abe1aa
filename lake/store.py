"""Opening the store behind a lake URL, and translating storage errors.

A lake lives at any fsspec URL. Arrays go through a Zarr v3 store (``LocalStore`` for local
paths because it writes atomically by rename, ``FsspecStore`` over an async filesystem for
``s3://``, ``memory://`` and the rest). Listing, group-metadata reads in bulk, deletions and the
plain files of training runs go through a synchronous fsspec filesystem on the same URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import fsspec
import fsspec.asyn
from fsspec.implementations.local import LocalFileSystem
from zarr.abc.store import Store
from zarr.storage import FsspecStore, LocalStore

from lake.errors import LakeAccessError, LakeError, LakeFormatError, LakeNotFoundError, one_line
from lake.layout import METADATA_FILE

_ACCESS_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden", "403")


def is_local_url(url: str) -> bool:
    """True for a plain path or a ``file://`` URL."""
    return "://" not in url or url.startswith("file://")


def canonical_url(url: str | os.PathLike[str]) -> str:
    """The lake URL with a local path made absolute, so it means the same in every process.

    Ray workers and actors run in other working directories than the driver: a relative path
    such as ``./lake.zarr`` handed to them would name another folder.
    """
    text = os.fspath(url)
    if is_local_url(text):
        return os.path.abspath(text.removeprefix("file://"))
    return text


@dataclass(frozen=True)
class StoreHandle:
    """Both views of one lake root: the Zarr store and a synchronous fsspec filesystem.

    Attributes
    ----------
    url
        The lake URL as given (local paths made absolute).
    storage_options
        fsspec options for the URL (endpoint, credentials, ``anon``...).
    zarr_store
        Zarr v3 store rooted at the lake root.
    fs
        Synchronous fsspec filesystem for listing, bulk metadata reads and deletions.
    root
        The lake root as a path inside ``fs`` (no trailing slash).
    read_only
        Whether writes are refused.
    """

    url: str
    storage_options: dict[str, Any]
    zarr_store: Store
    fs: fsspec.AbstractFileSystem
    root: str
    read_only: bool
    protocol: str = field(default="file")

    def path(self, relative: str) -> str:
        """Filesystem path of a key relative to the lake root."""
        return f"{self.root}/{relative}" if relative else self.root

    def url_of(self, relative: str) -> str:
        """URL (same scheme as the lake URL) of a key relative to the lake root."""
        return f"{self.url.rstrip('/')}/{relative}" if relative else self.url

    # ---- metadata reads ------------------------------------------------------------------
    def read_metadata(self, relative_group: str) -> dict[str, Any] | None:
        """Return the parsed ``zarr.json`` of a group, or None when it is missing.

        Raises :class:`LakeFormatError` when the file exists but is not valid JSON (a torn write
        on a filesystem without atomic rename).
        """
        return self.read_metadata_many([relative_group])[relative_group]

    def read_metadata_many(self, relative_groups: list[str]) -> dict[str, dict[str, Any] | None]:
        """Fetch many groups' ``zarr.json`` at once (concurrently on async filesystems).

        Returns a mapping group -> parsed metadata, None for a missing file, and the string
        ``"unreadable"`` wrapped as ``{"_unreadable": reason}`` for a file that does not parse.
        """
        if not relative_groups:
            return {}
        paths = {self.path(_join(g, METADATA_FILE)): g for g in relative_groups}
        with translate_errors(self.url):
            blobs = self.fs.cat(list(paths), on_error="return")
        out: dict[str, dict[str, Any] | None] = {}
        for path, group in paths.items():
            blob = blobs.get(path, blobs.get(self.fs._strip_protocol(path)))
            if blob is None or isinstance(blob, FileNotFoundError):
                out[group] = None
            elif isinstance(blob, PermissionError):
                raise LakeAccessError(
                    f"{self.url}: access denied reading {group or 'the lake root'}, "
                    f"check the credentials ({_short(blob)})"
                )
            elif isinstance(blob, Exception):
                out[group] = {"_unreadable": f"{type(blob).__name__}: {blob}"}
            else:
                try:
                    parsed = json.loads(blob)
                except ValueError as exc:
                    parsed = {"_unreadable": f"metadata is not valid JSON ({exc})"}
                if not isinstance(parsed, dict):
                    parsed = {
                        "_unreadable": f"metadata is a JSON {type(parsed).__name__}, not an object"
                    }
                out[group] = parsed
        return out

    def list_children(self, relative: str) -> list[str]:
        """Names of the sub-folders (groups or prefixes) directly under ``relative``."""
        path = self.path(relative)
        with translate_errors(self.url):
            self.fs.invalidate_cache(path)
            try:
                entries = self.fs.ls(path, detail=True)
            except FileNotFoundError:
                return []
        return _directory_names(entries)

    def list_children_many(self, relatives: list[str]) -> dict[str, list[str]]:
        """:meth:`list_children` of many folders; concurrent on async filesystems (S3)."""
        if not self.fs.async_impl or len(relatives) < 2:
            return {rel: self.list_children(rel) for rel in relatives}
        paths = [self.path(rel) for rel in relatives]

        async def list_all() -> list[Any]:
            return await asyncio.gather(
                *(self.fs._ls(p, detail=True, refresh=True) for p in paths),
                return_exceptions=True,
            )

        with translate_errors(self.url):
            results = fsspec.asyn.sync(self.fs.loop, list_all)
        out: dict[str, list[str]] = {}
        for rel, entries in zip(relatives, results, strict=True):
            if isinstance(entries, FileNotFoundError):
                out[rel] = []
                continue
            if isinstance(entries, BaseException):
                with translate_errors(self.url, rel):
                    raise entries
            out[rel] = _directory_names(entries)
        return out

    def exists(self, relative: str) -> bool:
        """Whether any key exists at or under ``relative``."""
        with translate_errors(self.url):
            self.fs.invalidate_cache(self.path(relative))
            return bool(self.fs.exists(self.path(relative)))

    def clear_prefix(self, relative: str) -> None:
        """Delete every key under ``relative``: one listing, then a bulk delete if any.

        Cheaper than :meth:`remove_tree` on object stores when the prefix is usually empty (a
        new master group): ``fs.rm`` probes the path several times before it lists it.
        """
        if self.protocol == "file":
            self.remove_tree(relative)
            return
        path = self.path(relative)
        with translate_errors(self.url):
            self.fs.invalidate_cache(path)
            if self.protocol in ("s3", "s3a") and "/" in path:
                # s3fs: a prefix listing is one LIST even when empty (no HEAD probe after it)
                parent, name = path.rsplit("/", 1)
                keys = self.fs.find(parent, prefix=name + "/")
            else:
                keys = self.fs.find(path + "/")
            if keys:
                self.fs.rm(keys)
            self.fs.invalidate_cache(path)

    def remove_tree(self, relative: str) -> None:
        """Delete everything at and under ``relative`` (no error when absent)."""
        path = self.path(relative)
        with translate_errors(self.url):
            self.fs.invalidate_cache(path)
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(path, recursive=True)
            self.fs.invalidate_cache(path)


def _directory_names(entries: list[dict[str, Any]]) -> list[str]:
    names = set()
    for entry in entries:
        if entry.get("type") == "directory":
            name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
            if name and not name.startswith("."):
                names.add(name)
    return sorted(names)


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p)


def open_store(url: str, storage_options: dict[str, Any] | None, read_only: bool) -> StoreHandle:
    """Build a :class:`StoreHandle` for ``url`` without touching the store yet.

    Parameters
    ----------
    url
        Local path, ``file://``, ``s3://bucket/prefix``, ``memory://name`` or any fsspec URL.
    storage_options
        Passed to fsspec (for S3: ``endpoint_url``, ``key``, ``secret``, ``profile``, ``anon``).
    read_only
        Open the Zarr store read-only.
    """
    options = dict(storage_options or {})
    if not isinstance(url, str) or not url.strip():
        raise LakeNotFoundError(f"lake URL {url!r} is empty")
    if is_local_url(url):
        local_path = os.path.abspath(url.removeprefix("file://"))
        fs = LocalFileSystem(auto_mkdir=True)
        store: Store = LocalStore(local_path, read_only=read_only)
        return StoreHandle(local_path, options, store, fs, local_path.rstrip("/"), read_only)
    with translate_errors(url):
        fs, root = fsspec.url_to_fs(url, **options)
        zarr_store = FsspecStore.from_url(url, storage_options=options, read_only=read_only)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return StoreHandle(
        url.rstrip("/"), options, zarr_store, fs, root.rstrip("/"), read_only, protocol
    )


def _is_access_error(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}"
    return isinstance(exc, PermissionError) or any(code in text for code in _ACCESS_CODES)


@contextlib.contextmanager
def translate_errors(url: str, what: str = "") -> Iterator[None]:
    """Turn storage-layer exceptions into one-line :class:`LakeError` subclasses.

    ``LakeError`` passes through unchanged; ``FileNotFoundError`` becomes
    :class:`LakeNotFoundError`; permission and credential failures become
    :class:`LakeAccessError`; other ``OSError`` become :class:`LakeError`.
    """
    where = f"{url}{(' ' + what) if what else ''}"
    try:
        yield
    except LakeError:
        raise
    except FileNotFoundError as exc:
        raise LakeNotFoundError(f"{where}: not found ({_short(exc)})") from exc
    except (PermissionError, OSError) as exc:
        if _is_access_error(exc):
            raise LakeAccessError(
                f"{where}: access denied, check the credentials ({_short(exc)})"
            ) from exc
        raise LakeError(f"{where}: storage error ({_short(exc)})") from exc
    except json.JSONDecodeError as exc:
        raise LakeFormatError(f"{where}: unreadable metadata ({_short(exc)})") from exc
    except Exception as exc:
        if _is_access_error(exc):
            raise LakeAccessError(
                f"{where}: access denied, check the credentials ({_short(exc)})"
            ) from exc
        raise


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {one_line(str(exc), first_line=True)}"[:300]
