"""Exceptions raised by the lake package.

Every error carries a one-line message that names the thing at fault (URL, material id,
variant, field) and the reason, so that the CLI can print it as is.
"""

from __future__ import annotations


class LakeError(RuntimeError):
    """Base class of every error the lake raises on purpose."""


class LakeInputError(LakeError, ValueError):
    """Bad input from the caller: an invalid id, a master of the wrong shape or dtype."""


class LakeNotFoundError(LakeError):
    """A lake, bucket, structure, master or run that does not exist."""


class MasterUnavailableError(LakeNotFoundError):
    """A master group that exists but is incomplete or failed, so it cannot be read."""


class LakeAccessError(LakeError):
    """The store refused access (wrong credentials, no permission)."""


class LakeFormatError(LakeError):
    """The store holds a format this version cannot read (newer format, unreadable metadata)."""


class LakeReadOnlyError(LakeError):
    """A write was attempted on a lake opened with ``mode="r"``."""
