"""The material names a user types, resolved to lake ids in one place.

Every stage that takes material ids (``ingest prototypes --only``, ``simulate --materials``,
``lake show``, ``train --materials/--test-ids``) resolves them here, so one name means the
same everywhere: an exact id wins; else a formula (``Ni3Al`` equals the stored reduced formula
``AlNi3``) or the id without its source prefix (``Ni`` for ``proto-Ni``) is accepted when it
names exactly one material. A name that names several or none is a one-line error listing the
candidate ids (closest first, via :mod:`difflib`).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lake.errors import LakeInputError, LakeNotFoundError
from lake.ids import check_material_id

_ELEMENT_COUNT = re.compile(r"([A-Z][a-z]?)(\d*)")
_MAX_SHOWN = 5


def composition_key(text: str) -> tuple[tuple[str, int], ...] | None:
    """Element counts of a formula reduced by their common divisor, sorted (``"Ni3Al"`` and
    ``"AlNi3"`` give the same key); ``None`` when ``text`` is not a plain formula."""
    if not text or not re.fullmatch(r"(?:[A-Z][a-z]?\d*)+", text):
        return None
    counts: dict[str, int] = {}
    for element, count in _ELEMENT_COUNT.findall(text):
        counts[element] = counts.get(element, 0) + int(count or 1)
    if not all(counts.values()):
        return None
    divisor = math.gcd(*counts.values())
    return tuple(sorted((element, n // divisor) for element, n in counts.items()))


def id_stem(material_id: str) -> str:
    """The id without its source prefix (``proto-Ni3Al`` -> ``Ni3Al``; ``mp-149`` -> ``149``)."""
    return material_id.split("-", 1)[1] if "-" in material_id else material_id


def _matches(name: str, aliases: Mapping[str, Iterable[str]]) -> list[str]:
    """Ids that ``name`` names: by alias or stem, then by composition, then case-insensitively."""
    key = composition_key(name)
    exact, by_formula, by_case = [], [], []
    for material_id, names in aliases.items():
        names = [id_stem(material_id), *names]
        if name in names:
            exact.append(material_id)
        elif key is not None and any(composition_key(n) == key for n in names):
            by_formula.append(material_id)
        elif name.lower() in {n.lower() for n in names} | {material_id.lower()}:
            by_case.append(material_id)
    return exact or by_formula or by_case


def _close_ids(name: str, aliases: Mapping[str, Iterable[str]]) -> list[str]:
    """Ids whose id or alias is close to ``name`` (difflib ratio >= 0.6), closest first."""
    owner: dict[str, str] = {}
    for material_id, names in aliases.items():
        for text in (material_id, *names):
            owner.setdefault(text.lower(), material_id)
    close = difflib.get_close_matches(name.lower(), list(owner), n=3 * _MAX_SHOWN, cutoff=0.6)
    return list(dict.fromkeys(owner[text] for text in close))[:_MAX_SHOWN]


def _shown(ids: Sequence[str]) -> str:
    """Up to five ids, then how many more."""
    more = f" and {len(ids) - _MAX_SHOWN} more" if len(ids) > _MAX_SHOWN else ""
    return ", ".join(ids[:_MAX_SHOWN]) + more


def resolve_name(
    name: str,
    aliases: Mapping[str, Iterable[str]],
    option: str,
    where: str = "",
    what: str = "material",
    hint: str = "`ebsdlake lake ls` lists them",
) -> str:
    """The id that ``name`` names among ``aliases`` (id -> other names, e.g. its formula).

    Raises
    ------
    LakeInputError
        ``name`` names several ids (the message lists them).
    LakeNotFoundError
        ``name`` names none (the message suggests the closest ids, else gives ``hint``).
    """
    if name in aliases:
        return name
    found = _matches(name, aliases)
    if len(found) == 1:
        return found[0]
    if found:
        raise LakeInputError(
            f"{option}: {name!r} names {len(found)} {what}s ({_shown(sorted(found))}); give one id"
        )
    close = _close_ids(name, aliases)
    suggestion = f"did you mean {_shown(close)}?" if close else hint
    raise LakeNotFoundError(f"{option}: no {what} {name!r}{where}; {suggestion}")


def resolve_names(
    names: Sequence[str],
    aliases: Mapping[str, Iterable[str]],
    option: str,
    where: str = "",
    what: str = "material",
    hint: str = "`ebsdlake lake ls` lists them",
) -> list[str]:
    """:func:`resolve_name` for each of ``names``, in order, without repeats."""
    resolved = [resolve_name(n, aliases, option, where, what, hint) for n in names]
    return list(dict.fromkeys(resolved))


def material_aliases(lake: Any) -> dict[str, list[str]]:
    """Every complete structure's id -> its stored formula (one catalog scan)."""
    ids = lake.structure_ids()
    formulas: dict[str, list[str]] = {material_id: [] for material_id in ids}
    table = lake.catalog()
    for material_id, formula in zip(table["material_id"], table["formula"], strict=True):
        known = formulas.get(material_id)
        if known is not None and isinstance(formula, str) and formula and formula not in known:
            known.append(formula)
    return formulas


def resolve_material_ids(lake: Any, names: Sequence[str] | None, option: str) -> list[str] | None:
    """The lake ids that ``names`` name (``None`` stays ``None``); exact ids cost no scan.

    Raises
    ------
    LakeInputError, LakeNotFoundError
        One line naming ``option``, the name, and the candidate ids.
    """
    if not names:
        return None if names is None else []
    known = set(lake.structure_ids())
    aliases: dict[str, list[str]] | None = None
    resolved = []
    for name in names:
        if name in known:
            resolved.append(name)
            continue
        aliases = aliases if aliases is not None else material_aliases(lake)
        hint = "ingest it first (`ebsdlake lake ls` lists the lake's materials)"
        try:
            resolved.append(resolve_name(name, aliases, option, f" in {lake.url}", hint=hint))
        except LakeNotFoundError:
            check_material_id(name)  # a name no lake can hold says why
            raise
    return list(dict.fromkeys(resolved))
