"""Campaign planning: which (material, variant) simulations still need to run.

A job is one master pattern: one structure under one B-factor set. Planning reads the lake's
status of every candidate group, so a campaign is resumable and idempotent: complete groups
are skipped, incomplete ones (a crash mid-write) are redone, failed ones are skipped unless
``retry_failed`` asks to take them up again.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lake.errors import LakeInputError
from lake.ids import check_variant
from lake.structures import StructureRecord
from simulate.errors import SimulateInputError
from simulate.settings import SimulationSettings
from simulate.structure import as_record
from simulate.variants import DEFAULT_VARIANT, Variant, material_variants

#: Recorded energy settings that a Monte Carlo file overrides (its own bins are used).
_ENERGY_KEYS = ("energy_min_kev", "energy_max_kev", "energy_step_kev")


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
    """The jobs to run and what planning left out (keys ``material/variant``).

    ``conflicts`` holds ``(key, differences)`` of complete masters stored at other settings
    than the ones asked for (neither skipped nor redone unless ``replace``); ``replaced`` the
    keys of such masters that are jobs because ``replace`` was given.
    """

    jobs: list[Job]
    complete: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    conflicts: list[tuple[str, str]] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)


def _same(stored: Any, wanted: Any) -> bool:
    if isinstance(wanted, float) and isinstance(stored, int | float):
        return math.isclose(float(stored), wanted, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(wanted, Mapping) and isinstance(stored, Mapping):
        return all(_same(stored.get(k), v) for k, v in wanted.items() if k in stored)
    return stored == wanted


def settings_differences(
    stored: Mapping[str, Any], settings: SimulationSettings, bfactors_nm2: Sequence[float]
) -> list[str]:
    """What differs between a stored master's attributes and the settings asked for.

    One ``"npx 20 (asked 24)"`` text per differing setting; only settings the master records
    are compared (an imported master without ``npx`` is not a conflict on ``npx``). The
    per-site B-factors count too (another ``--seed`` draws other random B).
    """
    wanted = settings.to_attrs()
    if settings.mc_file:
        wanted = {k: v for k, v in wanted.items() if k not in _ENERGY_KEYS}
    out = [
        f"{key} {stored[key]} (asked {value})"
        for key, value in wanted.items()
        if key in stored and not _same(stored[key], value)
    ]
    sites = stored.get("bfactors_nm2")
    if isinstance(sites, list) and all(isinstance(site, Mapping) for site in sites):
        have = tuple(site.get("B_nm2") for site in sites)
        if len(have) != len(bfactors_nm2) or not all(
            _same(h, float(b)) for h, b in zip(have, bfactors_nm2, strict=False)
        ):
            out.append(f"B-factors {list(have)} nm^2 (asked {list(bfactors_nm2)})")
    return out


def named_variants(variants: Sequence[Variant], variant_name: str) -> list[Variant]:
    """The variants renamed for ``--variant-name NAME``: the structure's own B becomes
    ``NAME``, random ones ``NAME-b01``...; ``"default"`` keeps the usual names."""
    if variant_name == DEFAULT_VARIANT:
        return list(variants)
    try:
        check_variant(variant_name)
    except LakeInputError as exc:
        raise SimulateInputError(f"--variant-name {variant_name!r}: {exc}") from None
    return [
        dataclasses.replace(
            v, name=variant_name if v.name == DEFAULT_VARIANT else f"{variant_name}-{v.name}"
        )
        for v in variants
    ]


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
    *,
    settings: SimulationSettings | None = None,
    replace: bool = False,
    variant_name: str = DEFAULT_VARIANT,
) -> Plan:
    """The jobs still to run for ``material_ids`` (default variant + N random each).

    ``structures`` gives the flat attributes of each id instead of reading them from the lake.
    With ``settings``, a complete master is skipped only when it was simulated at those
    settings; otherwise it goes to ``plan.conflicts``, or (``replace``) is simulated again.
    Damaged and incomplete masters are redone. ``variant_name`` renames the variants
    (:func:`named_variants`).

    Raises
    ------
    StructureError
        A stored structure whose lattice, sites or space group is missing or malformed.
    """
    plan = Plan(jobs=[])
    for material_id in material_ids:
        attrs = structures[material_id] if structures else lake.structure(material_id)
        structure = as_record({"material_id": material_id, **attrs})
        variants = material_variants(material_id, structure, n_random_variants, seed)
        for variant in named_variants(variants, variant_name):
            status = lake.master_status(material_id, variant.name)
            key = f"{material_id}/{variant.name}"
            if status == "complete":
                stored = lake.master_attrs(material_id, variant.name) if settings else {}
                differs = (
                    settings_differences(stored, settings, variant.bfactors_nm2) if settings else []
                )
                if not differs:
                    plan.complete.append(key)
                    continue
                if not replace:
                    plan.conflicts.append((key, ", ".join(differs)))
                    continue
                plan.replaced.append(key)
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
    plan.jobs = spread_over_groups(plan.jobs)
    return plan


def spread_over_groups(jobs: Sequence[Job]) -> list[Job]:
    """``jobs`` dealt round-robin over their space groups (groups in first-seen order, jobs in
    their own order within a group), so a campaign stopped part-way has masters of every
    group rather than the whole of the groups whose ids sort first."""
    by_group: dict[int | None, list[Job]] = {}
    for job in jobs:
        by_group.setdefault(job.structure.spacegroup_number, []).append(job)
    queues = list(by_group.values())
    return [
        queue[i]
        for i in range(max(map(len, queues), default=0))
        for queue in queues
        if i < len(queue)
    ]
