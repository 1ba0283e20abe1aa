"""What masters cost, read back from the lake: seconds per master by crystal system.

Every master records its engine wall time (``wall_time_s``, Monte Carlo included in
``mc_wall_time_s``) and whether the engine folded directions by the crystal's symmetry
(``symmetry_fold``): a low-symmetry crystal folds fewer directions, and a monoclinic one in its
unique-axis setting none at all, so its master costs more. Summed per system, these are the
figures a recipe is fitted to a time budget with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class SystemCost:
    """Master wall times of one crystal system, in seconds (one actor thread each).

    Attributes
    ----------
    crystal_system
        The (true) crystal system of the materials.
    masters
        Masters counted.
    median_s, mean_s, max_s, total_s
        Wall time per master: median, mean, largest, and the sum.
    folded
        Share of the masters computed on the symmetry-folded directions only.
    """

    crystal_system: str
    masters: int
    median_s: float
    mean_s: float
    max_s: float
    total_s: float
    folded: float

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return asdict(self)


def cost_by_crystal_system(
    lake, material_ids: list[str], variant: str = "default"
) -> list[SystemCost]:
    """Seconds per master of ``variant`` by crystal system, for the ``material_ids`` that have
    a complete master recording its wall time; systems in order of increasing symmetry."""
    from lake.laue_classes import LAUE_CLASS_SYSTEM

    seconds: dict[str, list[float]] = {}
    folded: dict[str, list[bool]] = {}
    for material_id in material_ids:
        if variant not in lake.variants(material_id):
            continue
        attrs = lake.master(material_id, variant).attrs
        if attrs.get("wall_time_s") is None:
            continue
        system = str(lake.structure(material_id).get("crystal_system"))
        seconds.setdefault(system, []).append(float(attrs["wall_time_s"]))
        folded.setdefault(system, []).append(bool(attrs.get("symmetry_fold", False)))
    order = list(dict.fromkeys(LAUE_CLASS_SYSTEM.values()))
    return [
        SystemCost(
            crystal_system=system,
            masters=len(values),
            median_s=round(float(np.median(values)), 2),
            mean_s=round(float(np.mean(values)), 2),
            max_s=round(float(np.max(values)), 2),
            total_s=round(float(np.sum(values)), 1),
            folded=round(float(np.mean(folded[system])), 2),
        )
        for system, values in sorted(
            seconds.items(), key=lambda item: order.index(item[0]) if item[0] in order else 99
        )
    ]
