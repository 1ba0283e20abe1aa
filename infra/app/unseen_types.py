"""Whole structure types held out of training: a new structure, not a new decoration.

A cubic recipe's held-out materials are new element decorations of the structure types it trains
on; a lab's unknown phase may be of a type the network never saw. Holding every material of some
types out (decorated crystals and bundled prototypes alike) measures that case, while each class
keeps at least one type in training so the network still has the class.
"""

from __future__ import annotations

from ingest.errors import IngestError
from ingest.structure_types import parse_structure_types, structure_type_of
from train.errors import TrainingError


def split_by_structure_types(
    lake, material_ids: list[str], unseen_types: tuple[str, ...], label: str
) -> tuple[list[str], list[str]]:
    """``(seen, unseen)``: materials of a structure type in ``unseen_types`` go to the second
    list, in the order given. Refuses, in one line, a type no material is of and a class
    (values of the lake attribute ``label``) that would be left with no training material."""
    from train.patterns.materials import material_labels

    if not unseen_types:
        return list(material_ids), []
    try:
        wanted = {stype.name for stype in parse_structure_types(unseen_types)}
    except IngestError as exc:
        raise TrainingError(f"unseen structure types: {exc}".replace("--types: ", "")) from None
    types = {m: structure_type_of(lake.structure(m).get("provenance") or {}) for m in material_ids}
    seen = [m for m in material_ids if types[m] not in wanted]
    unseen = [m for m in material_ids if types[m] in wanted]
    missing = sorted(wanted - set(types.values()))
    if missing:
        raise TrainingError(
            f"unseen structure types {', '.join(missing)}: no material of the recipe is of them"
        )
    trained = set(material_labels(lake, seen, label))
    for material, value in zip(unseen, material_labels(lake, unseen, label), strict=True):
        if value not in trained:
            raise TrainingError(
                f"unseen structure types {', '.join(unseen_types)}: class {value} would have "
                f"no training material ({material} is of type {types[material]}); keep one of "
                "its types in training"
            )
    return seen, unseen
