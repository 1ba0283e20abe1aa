"""Where things live in the store, and the reserved attribute keys.

The on-store format is documented in ``lake/README.md``; this module is its single source of
truth in code. All paths are relative to the lake root and use ``/``.
"""

from __future__ import annotations

FORMAT_VERSION = 1
"""Format written by this version; opening a lake with a larger number fails."""

ROOT_ATTR = "ebsdlake"
"""Root group attribute holding ``{"format": FORMAT_VERSION}``."""

STRUCTURES = "structures"
MASTERS = "masters"
RUNS = "runs"

MASTER_ARRAY = "master"
WEIGHTS_ARRAY = "weights"
MASTER_DIMS = ("energy", "hemisphere", "row", "col")
HEMISPHERES = ("north", "south")

STATUS_KEY = "status"
CHECKSUMS_KEY = "checksums"
REASON_KEY = "failure_reason"
PRECISION_KEY = "precision"

COMPLETE = "complete"
WRITING = "writing"
FAILED = "failed"
DAMAGED = "damaged"
"""A complete master whose chunks failed their checksums (marked by ``lake verify --repair``)."""
INCOMPLETE = "incomplete"
MISSING = "missing"

RESERVED_MASTER_KEYS = frozenset(
    {
        STATUS_KEY,
        CHECKSUMS_KEY,
        REASON_KEY,
        PRECISION_KEY,
        "material_id",
        "variant",
        "energies_kev",
        "layout",
        "damaged_at",
    }
)
RESERVED_STRUCTURE_KEYS = frozenset({STATUS_KEY, "material_id", "cif"})

METADATA_FILE = "zarr.json"


def structure_path(material_id: str) -> str:
    """Group path of a structure."""
    return f"{STRUCTURES}/{material_id}"


def material_masters_path(material_id: str) -> str:
    """Group path holding every variant of one material."""
    return f"{MASTERS}/{material_id}"


def master_path(material_id: str, variant: str) -> str:
    """Group path of one simulation (material, variant)."""
    return f"{MASTERS}/{material_id}/{variant}"


def run_path(run_id: str) -> str:
    """Folder of one training run (plain files, not Zarr)."""
    return f"{RUNS}/{run_id}"
