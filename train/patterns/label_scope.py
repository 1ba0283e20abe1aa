"""Scoped labels: a label restricted to some of its values, every other value one class.

A model of the paper's five cubic groups alone has no answer for a phase of another symmetry.
Trained on a scoped label, ``disordered_spacegroup_number@221,223,225,227,229``, it keeps those
five values and learns one more class, :data:`OUTSIDE`, from every other material. The scope is
part of the label string, so it travels wherever a label does (a run's settings, its
``reading.json``, the card). ``train.targets.scoped_label`` builds one from a target name.
"""

from __future__ import annotations

from train.patterns.errors import PatternError

OUTSIDE = "outside"
"""The one class of a scoped label that holds every value outside its scope."""
SCOPE_MARK = "@"
"""Separates a label from its scope: ``disordered_spacegroup_number@221,223,225,227,229``."""


class LabelScopeError(PatternError):
    """A scope whose values do not fit its label."""


def label_scope(label: str) -> tuple[str, tuple | None]:
    """``(attribute, scope)`` of a label key: the scope's values when it is scoped (ints for a
    numbered attribute such as a space-group number, else text: Laue class ``-1`` stays
    ``"-1"``), else None."""
    attribute, mark, values = str(label).partition(SCOPE_MARK)
    if not mark:
        return attribute, None
    kind = int if attribute.endswith("_number") else str
    try:
        return attribute, tuple(kind(v) for v in values.split(","))
    except ValueError:
        raise LabelScopeError(f"label {label!r}: {attribute} values are numbers") from None


def scoped_value(value: object, scope: tuple | None) -> object:
    """A label value as a scoped label reads it: itself inside ``scope``, else OUTSIDE."""
    return value if scope is None or value in scope else OUTSIDE
