"""Validation of the names that become path segments in the store.

Material ids, variant names and run ids are used verbatim as Zarr group names and object-store
keys, so they are restricted to a conservative character set that is safe on every filesystem
and in S3 keys: letters, digits, ``-``, ``_`` and ``.``, 1-128 characters, not starting with
``.`` (which would make hidden files or ``..`` traversal possible).
"""

from __future__ import annotations

import re

from lake.errors import LakeInputError

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,127}$")


def check_name(value: object, what: str) -> str:
    """Return ``value`` if it is a valid path segment, else raise :class:`LakeInputError`.

    Parameters
    ----------
    value
        The candidate name.
    what
        What the name is ("material id", "variant", "run id"), used in the error message.
    """
    if not isinstance(value, str) or not _NAME_PATTERN.fullmatch(value):
        raise LakeInputError(
            f"invalid {what} {value!r}: use 1-128 letters, digits, '-', '_' or '.', "
            "not starting with '.'"
        )
    return value


def check_material_id(value: object) -> str:
    """Validate a material id such as ``"mp-149"``."""
    return check_name(value, "material id")


def check_variant(value: object) -> str:
    """Validate a variant name such as ``"default"`` or ``"b03"``."""
    return check_name(value, "variant")


def check_run_id(value: object) -> str:
    """Validate a training run id such as ``"run-1"``."""
    return check_name(value, "run id")


def check_file_name(value: object) -> str:
    """Validate the name of a file inside a run folder (one path segment)."""
    return check_name(value, "run file name")
