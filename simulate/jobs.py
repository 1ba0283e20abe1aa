"""Campaign planning: which (material, variant) simulations still need to run.

A job is one master pattern: one structure under one B-factor set. Planning reads the lake's
status of every candidate group, so a campaign is resumable and idempotent: complete groups
are skipped, incomplete ones (a crash mid-write) are redone, failed ones are skipped unless
``retry_failed`` asks to take them up again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lake.structures import StructureRecord
from simulate.errors import SimulateInputError
from simulate.structure import as_record
from simulate.variants import material_variants


@dataclass(frozen=True)
class Job:
    """One simulation to run.

    Attributes
    ----------
    material_id, variant
        Where the master goes in the lake.
    structure
        The stored structure (what the engine builds the crystal from).
    bfactors_nm2
        Per-site Debye-Waller B in nm^2.
    variant_kind
        ``"structure"`` (the record's own B) or ``"random"``.
    """

    material_id: str
    variant: str
    structure: StructureRecord = field(repr=False, compare=False)
    bfactors_nm2: tuple[float, ...]
    variant_kind: str

    @property
    def key(self) -> str:
        """``material_id/variant``, for messages and bookkeeping."""
        return f"{self.material_id}/{self.variant}"


@dataclass
class Plan:
    """The jobs to run and what planning left out (keys ``material/variant``)."""

    jobs: list[Job]
    complete: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def select_materials(
    lake,
    material_ids: Sequence[str] | None = None,
    source: str | None = None,
    spacegroups: Iterable[int] | None = None,
) -> list[str]:
    """Material ids to simulate: the given ids, or every structure in the lake, filtered.

    Parameters
    ----------
    lake
        An open :class:`lake.Lake`.
    material_ids
        Explicit ids; each must be a complete structure in the lake.
    source
        Keep structures whose ``source`` attribute equals this (``"mp"``, ``"prototype"``...).
    spacegroups
        Keep structures whose ``spacegroup_number`` is one of these.
    """
    available = set(lake.structure_ids())
    if material_ids:
        missing = [m for m in material_ids if m not in available]
        if missing:
            raise SimulateInputError(
                f"{lake.url}: no complete structure for {', '.join(missing)}; ingest it first"
            )
        chosen = list(dict.fromkeys(material_ids))
    else:
        chosen = sorted(available)
    wanted_groups = {int(n) for n in spacegroups} if spacegroups else None
    if source is None and wanted_groups is None:
        return chosen
    out = []
    for material_id in chosen:
        attrs = lake.structure(material_id)
        if source is not None and attrs.get("source") != source:
            continue
        if (
            wanted_groups is not None
            and int(attrs.get("spacegroup_number", 0)) not in wanted_groups
        ):
            continue
        out.append(material_id)
    return out


def plan_jobs(
    lake,
    material_ids: Sequence[str],
    n_random_variants: int = 0,
    seed: int = 0,
    retry_failed: bool = False,
    structures: Mapping[str, Mapping[str, Any]] | None = None,
) -> Plan:
    """The jobs still to run for ``material_ids`` (default variant + N random each).

    ``structures`` gives the flat attributes of each id instead of reading them from the lake.

    Raises
    ------
    StructureError
        A stored structure whose lattice, sites or space group is missing or malformed.
    """
    plan = Plan(jobs=[])
    for material_id in material_ids:
        attrs = structures[material_id] if structures else lake.structure(material_id)
        structure = as_record({"material_id": material_id, **attrs})
        for variant in material_variants(material_id, structure, n_random_variants, seed):
            status = lake.master_status(material_id, variant.name)
            key = f"{material_id}/{variant.name}"
            if status == "complete":
                plan.complete.append(key)
                continue
            if status == "failed" and not retry_failed:
                plan.failed.append(key)
                continue
            plan.jobs.append(
                Job(
                    material_id=material_id,
                    variant=variant.name,
                    structure=structure,
                    bfactors_nm2=variant.bfactors_nm2,
                    variant_kind=variant.kind,
                )
            )
    return plan
