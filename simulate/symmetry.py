"""Point-group operators of a crystal in the Cartesian frame of its master pattern.

de-ebsd folds beam directions onto a fundamental sector of the point group it gets from
orix (``get_point_group(space_group)``) before solving, and copies each solved value to all
equivalent pixels. orix's point groups have fixed orientations (the 2-fold of ``2/m`` along
z, the mirrors of ``-3m`` and ``-42m`` in one orientation), while the crystal's own
operators depend on its setting (monoclinic unique axis b lies along y; ``P-31m`` and
``P-3m1``, ``P-42m`` and ``P-4m2`` differ by the mirror orientation). Where orix's group is
not a subgroup of the crystal's true point group, the fold imposes a symmetry the crystal does
not have, so the engine must solve every direction instead. This module decides that.
"""

from __future__ import annotations

import numpy as np

_TOLERANCE = 1e-6


def cartesian_point_group(crystal) -> np.ndarray:
    """The crystal's point-group operators acting on Cartesian directions, shape (N, 3, 3).

    Built from the rotation parts of the space group's operators (diffpy's ITA tables, the
    ones de-ebsd expands atoms with), moved into the Cartesian crystal frame with the direct
    structure matrix ``A`` (columns a, b, c in nm): ``R_cart = A R A^-1``.
    """
    from diffpy.structure.spacegroups import GetSpaceGroup

    basis = np.asarray(crystal.direct_structure_matrix, dtype=np.float64)
    inverse = np.linalg.inv(basis)
    ops: list[np.ndarray] = []
    for op in GetSpaceGroup(int(crystal.space_group)).iter_symops():
        matrix = basis @ np.asarray(op.R, dtype=np.float64) @ inverse
        if not any(np.allclose(matrix, kept, atol=_TOLERANCE) for kept in ops):
            ops.append(matrix)
    return np.stack(ops)


def library_fold_group(space_group: int) -> np.ndarray:
    """The operators (N, 3, 3) de-ebsd folds with: orix's point group for ``space_group``."""
    from orix.quaternion.symmetry import get_point_group

    group = get_point_group(int(space_group))
    matrices = np.asarray(group.to_matrix(), dtype=np.float64).reshape(-1, 3, 3)
    improper = np.asarray(group.improper, dtype=bool).reshape(-1)
    matrices[improper] *= -1.0
    return matrices


def _contains(group: np.ndarray, matrix: np.ndarray) -> bool:
    return bool(np.any(np.all(np.abs(group - matrix[None]) < 1e-5, axis=(1, 2))))


def fold_is_consistent(crystal) -> bool:
    """Whether de-ebsd's symmetry fold is exact for this crystal.

    True when every operator de-ebsd folds with is a true symmetry of the crystal (orix's
    group is a subgroup of the crystal's Cartesian point group), so folding changes nothing
    but the run time.
    """
    truth = cartesian_point_group(crystal)
    return all(_contains(truth, op) for op in library_fold_group(crystal.space_group))
