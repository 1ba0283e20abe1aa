"""The bundled prototype library: phases of the paper's experimental data set (Table 1).

``ingest/data/prototypes.json`` gives each phase's space group, origin choice, lattice parameter
(Angstrom) and Wyckoff sites with a literature citation; phases that could not be sourced
reliably are listed under ``excluded`` with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from importlib import resources
from typing import Any

from pymatgen.core import Lattice, Structure

from ingest.errors import IngestError
from ingest.labels import DEFAULT_SYMPREC
from ingest.record import StructureRecord, build_record
from ingest.wyckoff import expand_orbit, hall_number_for, wyckoff_multiplicity

DATA_FILE = "prototypes.json"


def prototype_table() -> dict[str, Any]:
    """The parsed bundled data file (``phases`` and ``excluded``)."""
    text = resources.files("ingest.data").joinpath(DATA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def prototype_names() -> list[str]:
    """Names of the bundled phases, in file order."""
    return [phase["name"] for phase in prototype_table()["phases"]]


def prototype_structure(phase: dict[str, Any]) -> Structure:
    """The full cubic cell of one data-file entry.

    Raises
    ------
    IngestError
        When a site's expanded orbit does not have its Wyckoff letter's multiplicity (a
        wrong coordinate or letter in the data file).
    """
    hall = hall_number_for(int(phase["space_group"]), phase.get("origin_choice"))
    species: list[str] = []
    coords: list = []
    for site in phase["sites"]:
        orbit = expand_orbit(hall, tuple(site["xyz"]))
        expected = wyckoff_multiplicity(hall, site["wyckoff"])
        if len(orbit) != expected:
            raise IngestError(
                f"{DATA_FILE}: {phase['name']} {site['element']} {site['wyckoff']} at "
                f"{site['xyz']} expands to {len(orbit)} atoms, Wyckoff {site['wyckoff']} has "
                f"{expected}"
            )
        species += [site["element"]] * len(orbit)
        coords += orbit.tolist()
    return Structure(Lattice.cubic(float(phase["a"])), species, coords)


def prototype_id(name: str) -> str:
    """Lake id of a prototype, e.g. ``proto-Ni3Al``."""
    return f"proto-{name}"


def load_prototypes(
    only: Iterable[str] | None = None,
    symprec: float = DEFAULT_SYMPREC,
    on_reject: Callable[[str, str], None] | None = None,
) -> Iterator[StructureRecord]:
    """Yield the bundled phases as records (all, or those named in ``only``).

    Parameters
    ----------
    only
        Phase names (case-sensitive, e.g. ``"Ni3Al"``); unknown names raise with the valid list.
    symprec
        spglib distance tolerance in Angstrom.
    on_reject
        Called with ``(material_id, reason)`` for a phase that fails; ``None`` raises instead.
    """
    table = prototype_table()
    phases = {phase["name"]: phase for phase in table["phases"]}
    wanted = list(phases) if only is None else list(only)
    for name in wanted:
        if name not in phases:
            excluded = table.get("excluded", {})
            why = f" ({excluded[name]})" if name in excluded else ""
            raise IngestError(f"unknown prototype {name!r}{why}; valid: {', '.join(phases)}")
    for name in wanted:
        phase = phases[name]
        provenance = {
            "source": "ebsdlake bundled prototypes (ingest/data/prototypes.json)",
            "citation": phase["citation"],
            "prototype": phase["prototype"],
            "a_angstrom": phase["a"],
        }
        try:
            yield build_record(
                prototype_id(name),
                prototype_structure(phase),
                "prototype",
                provenance,
                symprec=symprec,
                name=name,
            )
        except IngestError as exc:
            if on_reject is None:
                raise
            on_reject(prototype_id(name), str(exc))
