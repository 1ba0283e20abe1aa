"""Exceptions raised by the lake package.

Every error carries a one-line message that names the thing at fault (URL, material id,
variant, field) and the reason, so that the CLI can print it as is.
"""

from __future__ import annotations


class EbsdlakeError(Exception):
    """Base class of every error ebsdlake raises on purpose (any stage).

    Its message is one line naming the thing at fault and the reason; the CLI prints it as is
    (:func:`one_line`) with exit code 2, without a traceback.
    """


def one_line(exc: BaseException | str, limit: int = 300, *, first_line: bool = False) -> str:
    """An exception's message (or a text) as one line of at most ``limit`` characters.

    Parameters
    ----------
    exc
        The exception (its ``str``; its type name when that is empty) or a text.
    limit
        Longest result; longer ones end in ``...``.
    first_line
        Keep only the first non-blank line (a library's summary above its traceback or
        details) instead of joining every line.
    """
    raw = str(exc).strip()
    if first_line:
        raw = raw.splitlines()[0] if raw else ""
    text = " ".join(raw.split())
    if not text and isinstance(exc, BaseException):
        text = type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class LakeError(EbsdlakeError, RuntimeError):
    """Base class of every error the lake raises on purpose."""


class LakeInputError(LakeError, ValueError):
    """Bad input from the caller: an invalid id, a master of the wrong shape or dtype."""


class LakeNotFoundError(LakeError):
    """A lake, bucket, structure, master or run that does not exist."""


class MissingLabelError(LakeError, LookupError):
    """A structure record without the label attribute a caller asked for."""


class MasterUnavailableError(LakeNotFoundError):
    """A master group that exists but is incomplete or failed, so it cannot be read."""


class LakeAccessError(LakeError):
    """The store refused access (wrong credentials, no permission)."""


class LakeFormatError(LakeError):
    """The store holds a format this version cannot read (newer format, unreadable metadata)."""


class ChecksumError(LakeFormatError):
    """A chunk whose decoded bytes do not match the CRC-32C stored with its group."""


class LakeReadOnlyError(LakeError):
    """A write was attempted on a lake opened with ``mode="r"``."""
