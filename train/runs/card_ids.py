"""How a model card's text names the materials it was trained and tested on: every id when
there are few; for hundreds, generated crystals counted by kind and real phases named."""

from __future__ import annotations

INLINE_IDS = 60
"""Longest list of material ids ``card.md`` writes out whole; in a longer one the generated
crystals are counted, the named phases still listed, and ``card.json`` keeps every id."""
GENERATED_KINDS = {"dec": "decorated", "syn": "synthetic"}
"""Id prefixes (before the first ``-``) of generated crystals, and what they are called."""


def id_list(ids: list[str], where: str) -> str:
    """Material ids for ``card.md``: all of them when few; else the count of each kind of
    generated crystal and the named phases (prototypes, CIFs, Materials Project) by id, with
    the ``card.json`` field ``where`` that lists them all."""
    if len(ids) <= INLINE_IDS:
        return ", ".join(ids) or "none"
    generated: dict[str, int] = {}
    named = []
    for material in ids:
        kind = GENERATED_KINDS.get(material.split("-", 1)[0])
        if kind is None:
            named.append(material)
        else:
            generated[kind] = generated.get(kind, 0) + 1
    parts = [f"{n} {kind} crystals" for kind, n in generated.items()]
    if named:
        parts.append(f"{len(named)} named: {', '.join(named)}")
    return "; ".join(parts) + f" (every id in card.json, `{where}`)"
