"""Label targets: which structure attribute a run learns to predict.

The paper's relabeling (Yan et al. 2025) trains on the space group of the compositionally
disordered structure; the true space group, point group, crystal system and Bravais lattice are
the other targets. Each target name maps to one flat structure attribute of the lake
(``docs/ARCHITECTURE.md``), which is what ``train.stream.StreamConfig.label`` takes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from train.errors import TrainingError

#: Target name (CLI ``--label``) -> flat structure attribute key in the lake.
LABEL_TARGETS: dict[str, str] = {
    "disordered_spacegroup": "disordered_spacegroup_number",
    "spacegroup": "spacegroup_number",
    "point_group": "point_group",
    "laue_class": "laue_class",
    "disordered_laue_class": "disordered_laue_class",
    "disordered_crystal_system": "disordered_crystal_system",
    "crystal_system": "crystal_system",
    "bravais_lattice": "bravais_lattice",
}

DEFAULT_TARGET = "disordered_spacegroup"

OUTSIDE = "outside"
"""The one class of a scoped label that holds every value outside its scope."""
SCOPE_MARK = "@"
"""Separates a label from its scope: ``disordered_spacegroup_number@221,223,225,227,229``."""


def scoped_label(target: str, scope: Sequence) -> str:
    """``target``'s attribute restricted to the values ``scope``; every other value becomes the
    class :data:`OUTSIDE`. A model trained on it can answer "none of these" for a phase of
    another symmetry, which a model of the scope's classes alone cannot."""
    values = [str(v) for v in scope]
    if len(values) < 1 or any(not v or "," in v or v == OUTSIDE for v in values):
        raise TrainingError(f"label scope {list(scope)!r}: need one or more values, no commas")
    label = f"{label_attribute(target)}{SCOPE_MARK}{','.join(values)}"
    label_scope(label)  # a numbered attribute takes numbers
    return label


def label_scope(label: str) -> tuple[str, tuple | None]:
    """``(attribute, scope)`` of a label key: the scope's values when it is scoped
    (:func:`scoped_label`; ints for a numbered attribute such as a space-group number, else
    text: Laue class ``-1`` stays ``"-1"``), else None."""
    attribute, mark, values = str(label).partition(SCOPE_MARK)
    if not mark:
        return attribute, None
    kind = int if attribute.endswith("_number") else str
    try:
        return attribute, tuple(kind(v) for v in values.split(","))
    except ValueError:
        raise TrainingError(f"label {label!r}: {attribute} values are numbers") from None


def scoped_value(value: object, scope: tuple | None) -> object:
    """A label value as a scoped label reads it: itself inside ``scope``, else OUTSIDE."""
    return value if scope is None or value in scope else OUTSIDE


def label_attribute(target: str) -> str:
    """Return the structure attribute key for a label target.

    Parameters
    ----------
    target
        A key of :data:`LABEL_TARGETS` (e.g. ``"spacegroup"``) or already an attribute key
        (e.g. ``"spacegroup_number"``, or a ``disordered_`` variant of the five labels).

    Returns
    -------
    str
        The attribute key the stream reads labels from (with its scope, for a scoped label).
    """
    if SCOPE_MARK in str(target):
        stem, _, values = str(target).partition(SCOPE_MARK)
        return scoped_label(label_attribute(stem), values.split(","))
    if target in LABEL_TARGETS:
        return LABEL_TARGETS[target]
    if target in LABEL_TARGETS.values():
        return target
    disordered = {"disordered_" + v for v in LABEL_TARGETS.values()}
    if target in disordered:
        return target
    choices = ", ".join(LABEL_TARGETS)
    raise TrainingError(f"label target {target!r}: unknown; choose one of {choices}")


@functools.cache
def _space_group_symbols() -> dict[int, str]:
    """Space-group number -> Hermann-Mauguin short symbol (spglib's first Hall setting)."""
    import spglib

    symbols: dict[int, str] = {}
    for hall in range(1, 531):
        kind = spglib.get_spacegroup_type(hall)
        if kind is not None:
            symbols.setdefault(int(kind.number), str(kind.international_short))
    return symbols


def class_symbol(label: str, value: object) -> str:
    """How a class reads to a person: the Hermann-Mauguin symbol of a space-group number
    (``225`` -> ``"Fm-3m"``) for the space-group labels, else the value as text."""
    if "spacegroup" in str(label):
        try:
            number = int(value)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return str(value)
        return _space_group_symbols().get(number, str(value))
    return str(value)
