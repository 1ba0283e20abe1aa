"""Materials Project source through the official ``mp-api`` client.

Each space group of the query is fetched with ``MPRester.materials.summary.search`` (the client
pages through the results with ``_skip``/``_limit``); transient failures (connection errors, HTTP
429 rate limits and 5xx) are retried with exponential back-off on top of the client's own retries.
Ids already in the lake are skipped before any structure is normalised, so an interrupted run
resumes where it stopped. Provenance records the query, the database version the server reports
and the ``mp-api`` version.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ingest.elements import check_elements
from ingest.errors import IngestError, MaterialsProjectError, MissingApiKeyError
from ingest.labels import DEFAULT_SYMPREC
from ingest.record import StructureRecord, build_record
from ingest.spacegroups import check_space_group
from lake.errors import one_line

MISSING_KEY_MESSAGE = (
    "Materials Project needs an API key: set MP_API_KEY or [ingest] mp_api_key in "
    "ebsdlake.toml (get one at https://next-gen.materialsproject.org/api)"
)
#: The paper's selection: space group -> largest cell volume in Angstrom^3.
PAPER_PRESET = {221: 250.0, 223: 250.0, 225: 250.0, 229: 250.0, 227: 500.0, 230: 2000.0}
#: Summary fields ingest needs.
FIELDS = ["material_id", "formula_pretty", "structure", "symmetry", "volume", "nsites"]
CRYSTAL_SYSTEMS = (
    "triclinic",
    "monoclinic",
    "orthorhombic",
    "tetragonal",
    "trigonal",
    "hexagonal",
    "cubic",
)
_RETRYABLE = re.compile(r"status code (429|5\d\d)|Max retries|Connection|timed out|Timeout", re.I)


@dataclass(frozen=True)
class MPQuery:
    """A Materials Project selection.

    Attributes
    ----------
    max_volume_by_group
        Space group -> largest cell volume in Angstrom^3 (None: no limit).
    crystal_system
        Restrict to one crystal system (lower case), or None.
    elements
        Materials must contain all of these elements.
    num_sites
        (min, max) sites in the MP cell, or None.
    max_volume
        Largest cell volume in Angstrom^3 for every group without its own limit in
        ``max_volume_by_group`` (and for a query without groups), or None.
    """

    max_volume_by_group: dict[int, float | None] = field(default_factory=dict)
    crystal_system: str | None = None
    elements: tuple[str, ...] = ()
    num_sites: tuple[int, int] | None = None
    max_volume: float | None = None

    @classmethod
    def paper_preset(cls) -> MPQuery:
        """Yan et al. 2025: 221, 223, 225, 229 below 250 A^3; 227 below 500; 230 below 2000."""
        return cls(max_volume_by_group=dict(PAPER_PRESET))

    def validated(self) -> MPQuery:
        """Raise :class:`IngestError` on an unknown group, element or crystal system, a volume
        that is not positive or a site range that is not ``1 <= MIN <= MAX``."""
        if not self.max_volume_by_group and self.crystal_system is None and not self.elements:
            raise IngestError(
                "Materials Project query is empty: give --paper-preset, --spacegroups, "
                "--crystal-system or --elements"
            )
        for number in self.max_volume_by_group:
            check_space_group(number)
        if self.crystal_system is not None and self.crystal_system not in CRYSTAL_SYSTEMS:
            raise IngestError(
                f"unknown crystal system {self.crystal_system!r} (valid: {', '.join(CRYSTAL_SYSTEMS)})"
            )
        volumes = [v for v in self.max_volume_by_group.values() if v is not None]
        for volume in [*volumes, *([self.max_volume] if self.max_volume is not None else [])]:
            if not (math.isfinite(volume) and volume > 0):
                raise IngestError(f"--max-volume {volume:g}: must be > 0 (Angstrom^3)")
        if self.num_sites is not None:
            low, high = self.num_sites
            if not 1 <= low <= high:
                raise IngestError(f"--num-sites {low} {high}: need 1 <= MIN <= MAX")
        elements = tuple(check_elements(self.elements, "--elements"))
        return replace(self, elements=elements)

    def as_provenance(self) -> dict[str, Any]:
        """The query as JSON-able provenance."""
        data = asdict(self)
        data["max_volume_by_group"] = {str(k): v for k, v in self.max_volume_by_group.items()}
        return data


def resolve_api_key(configured: str | None = None) -> str:
    """The API key from ``MP_API_KEY`` or the config file; raise :class:`MissingApiKeyError`."""
    key = os.environ.get("MP_API_KEY") or (configured or "")
    if not key.strip():
        raise MissingApiKeyError(MISSING_KEY_MESSAGE)
    return key.strip()


def _with_retries(call: Callable[[], Any], what: str, retries: int, backoff_s: float) -> Any:
    """Run ``call``; retry transient failures with exponential back-off."""
    from mp_api.client.core import MPRestError
    from requests.exceptions import RequestException

    for attempt in range(retries + 1):
        try:
            return call()
        except (MPRestError, RequestException) as exc:
            message = one_line(exc, first_line=True)
            if re.search(r"status code (401|403)", str(exc)):
                raise MaterialsProjectError(
                    f"Materials Project refused the API key ({what}): {message}"
                ) from None
            if attempt == retries or not _RETRYABLE.search(str(exc) + type(exc).__name__):
                raise MaterialsProjectError(
                    f"Materials Project {what} failed after {attempt + 1} attempt(s): {message}"
                ) from None
            time.sleep(backoff_s * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _search_kwargs(query: MPQuery, space_group: int | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"fields": list(FIELDS)}
    limit = None
    if space_group is not None:
        kwargs["spacegroup_number"] = space_group
        limit = query.max_volume_by_group.get(space_group)
    limit = query.max_volume if limit is None else limit
    if limit is not None:
        kwargs["volume"] = (0.0, float(limit))
    if query.crystal_system is not None:
        kwargs["crystal_system"] = query.crystal_system.capitalize()
    if query.elements:
        kwargs["elements"] = list(query.elements)
    if query.num_sites is not None:
        kwargs["num_sites"] = tuple(int(n) for n in query.num_sites)
    return kwargs


def _field(doc: Any, name: str) -> Any:
    return doc.get(name) if isinstance(doc, dict) else getattr(doc, name, None)


def query(
    mp_query: MPQuery,
    api_key: str | None = None,
    endpoint: str | None = None,
    skip_ids: Collection[str] = (),
    symprec: float = DEFAULT_SYMPREC,
    chunk_size: int = 500,
    retries: int = 4,
    backoff_s: float = 1.0,
    on_reject: Callable[[str, str], None] | None = None,
    on_skip: Callable[[str], None] | None = None,
) -> Iterator[StructureRecord]:
    """Yield records for the materials that ``mp_query`` selects.

    Parameters
    ----------
    mp_query
        The selection (see :meth:`MPQuery.paper_preset`).
    api_key
        API key; None reads ``MP_API_KEY``.
    endpoint
        API base URL; None uses the client's default (the public API).
    skip_ids
        Material ids already ingested; they are not normalised again (``on_skip`` is told).
    symprec
        spglib distance tolerance in Angstrom.
    chunk_size
        Documents per page.
    retries, backoff_s
        Retries per request after the first attempt, and the first back-off in seconds
        (doubling each time).
    on_reject
        Called with ``(material_id, reason)`` for a document that cannot be stored; None raises.
    """
    import mp_api
    from mp_api.client import MPRester

    mp_query = mp_query.validated()
    key = resolve_api_key(api_key)
    rester = _with_retries(
        lambda: MPRester(api_key=key, endpoint=endpoint, mute_progress_bars=True),
        "connection",
        retries,
        backoff_s,
    )
    base_provenance = {
        "database": "Materials Project",
        "endpoint": rester.endpoint,
        "database_version": rester.db_version,
        "mp_api_version": getattr(mp_api, "__version__", "unknown"),
        "query": mp_query.as_provenance(),
    }
    groups: list[int | None] = sorted(mp_query.max_volume_by_group) or [None]
    skip = set(skip_ids)
    for space_group in groups:
        kwargs = _search_kwargs(mp_query, space_group)
        docs = _with_retries(
            lambda kwargs=kwargs: rester.materials.summary.search(chunk_size=chunk_size, **kwargs),
            f"search {kwargs | {'fields': '...'}}",
            retries,
            backoff_s,
        )
        for doc in docs:
            material_id = str(_field(doc, "material_id"))
            if material_id in skip:
                if on_skip is not None:
                    on_skip(material_id)
                continue
            symmetry = _field(doc, "symmetry")
            provenance = {
                **base_provenance,
                "retrieved_utc": datetime.now(UTC).isoformat(timespec="seconds"),
                "mp_formula": _field(doc, "formula_pretty"),
                "mp_spacegroup_number": _field(symmetry, "number") if symmetry else None,
            }
            try:
                structure = _field(doc, "structure")
                if structure is None:
                    raise IngestError(f"{material_id}: the response has no structure")
                if isinstance(structure, dict):
                    from pymatgen.core import Structure

                    structure = Structure.from_dict(structure)
                yield build_record(material_id, structure, "mp", provenance, symprec)
            except IngestError as exc:
                if on_reject is None:
                    raise
                on_reject(material_id, str(exc))
            skip.add(material_id)
