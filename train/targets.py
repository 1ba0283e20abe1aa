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
from train.patterns.label_scope import (
    OUTSIDE,
    SCOPE_MARK,
    LabelScopeError,
    label_scope,
    scoped_value,
)

__all__ = [
    "DEFAULT_TARGET",
    "LABEL_TARGETS",
    "OUTSIDE",
    "class_symbol",
    "label_attribute",
    "label_scope",
    "scoped_label",
    "scoped_value",
]

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


def scoped_label(target: str, scope: Sequence) -> str:
    """``target``'s attribute restricted to the values ``scope``; every other value becomes the
    class :data:`~train.patterns.label_scope.OUTSIDE`. A model trained on it can answer "none
    of these" for a phase of another symmetry, which a model of the scope's classes alone
    cannot."""
    values = [str(v) for v in scope]
    if len(values) < 1 or any(not v or "," in v or v == OUTSIDE for v in values):
        raise TrainingError(f"label scope {list(scope)!r}: need one or more values, no commas")
    label = f"{label_attribute(target)}{SCOPE_MARK}{','.join(values)}"
    try:
        label_scope(label)  # a numbered attribute takes numbers
    except LabelScopeError as exc:
        raise TrainingError(str(exc)) from None
    return label


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
