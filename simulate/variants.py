"""B-factor variants: the structure's own Debye-Waller factors and N random sets.

The paper re-simulated each structure with every atom's B drawn uniformly from
0.005-0.011 nm^2 to cover patterns with weakened dynamical contrast. Symmetry-equivalent atoms
must keep one B (else the crystal loses its symmetry), so the draw is per site of the
asymmetric unit. Each variant's draw depends only on (seed, material id, variant index), so a
re-run or a retry reproduces exactly the same B values.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from simulate.errors import SimulateInputError
from simulate.structure import StructureLike, site_bfactors

DEFAULT_VARIANT = "default"
#: The paper's range for random B-factors, nm^2.
RANDOM_B_RANGE_NM2 = (0.005, 0.011)


@dataclass(frozen=True)
class Variant:
    """One B-factor set of one material.

    Attributes
    ----------
    name
        ``"default"`` or ``"b01"``, ``"b02"``...
    bfactors_nm2
        One B per site of the asymmetric unit, nm^2.
    kind
        ``"structure"`` (the record's own B) or ``"random"``.
    """

    name: str
    bfactors_nm2: tuple[float, ...]
    kind: str


def voltage_variant_name(voltage_kv: float) -> str:
    """Name of the variant holding masters at another beam energy: ``kv30``, ``kv12p5``."""
    return f"kv{float(voltage_kv):g}".replace(".", "p")


def random_variant_name(index: int) -> str:
    """Name of the ``index``-th (1-based) random variant: ``b01``, ``b02``, ... ``b100``."""
    return f"b{index:02d}"


def random_bfactors(
    material_id: str,
    n_sites: int,
    index: int,
    seed: int = 0,
    b_range_nm2: tuple[float, float] = RANDOM_B_RANGE_NM2,
) -> tuple[float, ...]:
    """Per-site B (nm^2) of random variant ``index`` of ``material_id``, reproducibly."""
    low, high = b_range_nm2
    if not 0 < low <= high:
        raise SimulateInputError(f"B-factor range {b_range_nm2}: need 0 < low <= high (nm^2)")
    key = zlib.crc32(material_id.encode("utf-8"))
    rng = np.random.default_rng([int(seed), key, int(index)])
    return tuple(float(round(b, 6)) for b in rng.uniform(low, high, size=n_sites))


def material_variants(
    material_id: str,
    structure: StructureLike,
    n_random: int = 0,
    seed: int = 0,
    b_range_nm2: tuple[float, float] = RANDOM_B_RANGE_NM2,
    include_default: bool = True,
) -> list[Variant]:
    """The default variant (record's own B) and ``n_random`` random ones for one material."""
    if n_random < 0:
        raise SimulateInputError(f"--variants {n_random}: must be >= 0")
    own = tuple(site_bfactors(structure))
    out = [Variant(DEFAULT_VARIANT, own, "structure")] if include_default else []
    for index in range(1, n_random + 1):
        out.append(
            Variant(
                random_variant_name(index),
                random_bfactors(material_id, len(own), index, seed, b_range_nm2),
                "random",
            )
        )
    return out
