"""Conversion of attribute values to plain JSON, as Zarr attributes require."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from lake.errors import LakeInputError


def to_json(value: Any, where: str = "attrs") -> Any:
    """Return ``value`` as JSON-compatible Python (dict/list/str/int/float/bool/None).

    NumPy scalars and arrays become Python numbers and lists; tuples become lists; NaN and
    infinities become None (strict JSON has no NaN). Anything else raises
    :class:`LakeInputError` naming the offending key path.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return to_json(value.tolist(), where)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise LakeInputError(f"{where}: key {key!r} is not a string")
            out[key] = to_json(item, f"{where}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [to_json(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise LakeInputError(f"{where}: value of type {type(value).__name__} is not JSON-serialisable")
