"""ebsdlake's lake: the only code that reads or writes the simulated-pattern store.

A Zarr v3 hierarchy at any fsspec URL (local path, ``s3://``, ``memory://``); see
``lake/README.md`` for the on-store format and :class:`lake.Lake` for the API.
"""

from lake.errors import (
    ChecksumError,
    LakeAccessError,
    LakeError,
    LakeFormatError,
    LakeInputError,
    LakeNotFoundError,
    LakeReadOnlyError,
    MasterUnavailableError,
    MissingLabelError,
)
from lake.lake import Lake
from lake.layout import FORMAT_VERSION
from lake.store import canonical_url
from lake.structures import StoredSite, StructureRecord
from lake.verify import VerifyReport

__all__ = [
    "FORMAT_VERSION",
    "ChecksumError",
    "Lake",
    "LakeAccessError",
    "LakeError",
    "LakeFormatError",
    "LakeInputError",
    "LakeNotFoundError",
    "LakeReadOnlyError",
    "MasterUnavailableError",
    "MissingLabelError",
    "StoredSite",
    "StructureRecord",
    "VerifyReport",
    "canonical_url",
]
