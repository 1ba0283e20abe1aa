"""Whole space groups held out of training: the honest test of an "unknown phase".

Holding out materials leaves their space group in training through its other materials; a
phase of a group the network never saw is the case a lab meets. The groups are drawn per Laue
class (stratified, seeded), and every Laue class keeps at least one group in training, so each
class still has an output and its held-out groups test generalisation within it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from lake.laue_classes import LAUE_CLASS_SPACE_GROUPS
from train.errors import TrainingError


def choose_unseen_groups(
    fraction: float, seed: int, candidates: Iterable[int] | None = None
) -> list[int]:
    """Space-group numbers to hold out: ``round(fraction * n)`` of the ``n`` candidate groups
    of each Laue class (at least one where ``fraction`` > 0, never all), drawn with ``seed``.

    ``candidates`` are the groups the training set has (None: all 230).
    """
    if not 0 <= fraction < 1:
        raise TrainingError(f"unseen group fraction {fraction}: must be in [0, 1)")
    if fraction == 0:
        return []
    wanted = set(range(1, 231) if candidates is None else map(int, candidates))
    rng = np.random.default_rng([int(seed), 230])
    chosen: list[int] = []
    for numbers in LAUE_CLASS_SPACE_GROUPS.values():
        present = [n for n in numbers if n in wanted]
        count = min(max(1, round(fraction * len(present))), len(present) - 1)
        if count > 0:
            chosen += [int(n) for n in rng.choice(present, size=count, replace=False)]
    return sorted(chosen)


def split_by_groups(
    material_ids: list[str], space_groups: list[int], unseen: list[int]
) -> tuple[list[str], list[str]]:
    """``(seen, unseen)`` materials: those whose (true) space group is in ``unseen`` go to the
    second list, in the order given."""
    held = set(unseen)
    seen = [m for m, g in zip(material_ids, space_groups, strict=True) if int(g) not in held]
    out = [m for m, g in zip(material_ids, space_groups, strict=True) if int(g) in held]
    return seen, out
