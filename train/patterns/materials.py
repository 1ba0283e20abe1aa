"""A material's label, its available master variants, and held-out splits: one owner.

Every stage that picks materials for training or testing (the stream, the k-fold protocol, the
label comparison, the demo) asks this module, so a label, an availability rule or a split is
written once. Labels are flat structure attributes (``"disordered_spacegroup_number"``...);
``train.targets`` maps the CLI's target names onto them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lake import MissingLabelError
from train.patterns.errors import PatternError
from train.patterns.label_scope import label_scope, scoped_value
from train.patterns.sampling import grouped_folds


class MaterialError(PatternError):
    """A material that is not in the lake, has no usable master, or lacks its label."""


def material_labels(lake: Any, material_ids: Sequence[str], label_key: str) -> list:
    """Label value of each material (structure attribute ``label_key``), in order; for a scoped
    key (``train.targets.scoped_label``) a value outside the scope reads ``"outside"``."""
    attribute, scope = label_scope(label_key)
    try:
        values = [lake.structure_record(mid).label(attribute) for mid in material_ids]
    except MissingLabelError as exc:
        raise MaterialError(str(exc)) from None
    return [scoped_value(v, scope) for v in values]


def available_variants(lake: Any, material_id: str, variants: Sequence[str]) -> list[str]:
    """The wanted ``variants`` that ``material_id`` has a complete master for, in order."""
    have = set(lake.variants(material_id))
    return [v for v in variants if v in have]


def trainable_materials(lake: Any, variants: Sequence[str]) -> list[str]:
    """Structures with at least one complete master among ``variants``."""
    return [m for m in lake.structure_ids() if available_variants(lake, m, variants)]


def check_materials(
    lake: Any, material_ids: Sequence[str], variants: Sequence[str], option: str
) -> None:
    """Raise :class:`MaterialError` naming ``option`` unless every id is a structure of the
    lake with a complete master among ``variants``."""
    known = set(lake.structure_ids())
    unknown = [m for m in material_ids if m not in known]
    if unknown:
        shown = ", ".join(repr(m) for m in unknown[:5])
        raise MaterialError(f"{option}: no material {shown} in {lake.url}")
    lacking = [m for m in material_ids if not available_variants(lake, m, variants)]
    if lacking:
        shown = ", ".join(repr(m) for m in lacking[:5])
        raise MaterialError(
            f"{option}: {shown} has no complete master among variants {list(variants)}"
        )


def check_classes(run_id: str, label: str, labels: Sequence) -> None:
    """Raise :class:`MaterialError` when the training materials' ``labels`` hold < 2 classes."""
    classes = len(set(labels))
    if classes < 2:
        raise MaterialError(
            f"run {run_id!r}: label {label!r} has {classes} class(es) among the {len(labels)} "
            "training materials; a classifier needs two or more"
        )


def holdout_split(
    material_ids: Sequence[str], labels: Sequence, fraction: float, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Hold out about ``fraction`` of each label's materials (>= 1 where a label has >= 2).

    Returns
    -------
    (train_ids, test_ids)
        Disjoint, grouped by material; a label with one material stays in training.
    """
    if not 0 <= fraction < 1:
        raise MaterialError(f"holdout fraction {fraction}: must be in [0, 1)")
    rng = np.random.default_rng(seed)
    test: set[str] = set()
    for value in sorted(set(labels), key=str):
        members = [m for m, lab in zip(material_ids, labels, strict=True) if lab == value]
        if fraction == 0 or len(members) < 2:
            continue
        count = min(len(members) - 1, max(1, round(fraction * len(members))))
        test.update(rng.choice(members, size=count, replace=False).tolist())
    return [m for m in material_ids if m not in test], [m for m in material_ids if m in test]


def holdout_fold(
    material_ids: Sequence[str], labels: Sequence, folds: int, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Hold out the first of ``folds`` label-stratified material folds; a class seen only in
    the held-out fold goes back to training (a model cannot be scored on a class it never saw).

    Returns
    -------
    (train_ids, test_ids)
        Sorted and disjoint.
    """
    train_ids, test_ids = grouped_folds(list(material_ids), list(labels), k=folds, seed=seed)[0]
    label_of = dict(zip(material_ids, labels, strict=True))
    trained = {label_of[m] for m in train_ids}
    moved = [m for m in test_ids if label_of[m] not in trained]
    return sorted(train_ids + moved), sorted(m for m in test_ids if m not in moved)
