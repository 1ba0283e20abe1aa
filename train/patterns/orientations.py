"""Orientations drawn uniformly on SO(3), seeded, optionally reduced to a fundamental zone.

Quaternions are (w, x, y, z) with w >= 0, the convention of orix and kikuchipy's
``get_patterns``: they rotate sample-frame directions into the crystal frame of the master.
"""

from __future__ import annotations

import numpy as np

from train.patterns.errors import PatternError


class OrientationError(PatternError):
    """An orientation request is malformed (count, space group)."""


def sample_so3(
    n: int,
    seed: int | np.random.Generator = 0,
    space_group: int | None = None,
) -> np.ndarray:
    """Draw ``n`` rotations uniformly (Haar measure) on SO(3).

    Uses Shoemake's subgroup algorithm (three uniform numbers per rotation), which is exactly
    uniform and needs no rejection.

    Parameters
    ----------
    n
        Number of rotations.
    seed
        Integer seed or a NumPy generator; the same seed gives the same rotations.
    space_group
        If given (1-230), map each rotation into the fundamental zone of that space group's
        proper point group (orix); the distribution stays uniform within the zone. Useful for
        visualisation; training does not need it since the master already holds the symmetry.

    Returns
    -------
    numpy.ndarray
        float64 (n, 4) unit quaternions with non-negative scalar part.
    """
    if int(n) < 0:
        raise OrientationError(f"orientation count {n}: must be >= 0")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    u1, u2, u3 = rng.random((3, int(n)))
    a, b = np.sqrt(1.0 - u1), np.sqrt(u1)
    q = np.stack(
        [
            a * np.sin(2 * np.pi * u2),
            a * np.cos(2 * np.pi * u2),
            b * np.sin(2 * np.pi * u3),
            b * np.cos(2 * np.pi * u3),
        ],
        axis=1,
    )
    q = q[:, [3, 0, 1, 2]]  # scalar first
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    if space_group is not None:
        q = reduce_to_fundamental_zone(q, space_group)
    return q


def reduce_to_fundamental_zone(quaternions: np.ndarray, space_group: int) -> np.ndarray:
    """Map rotations into the fundamental zone of ``space_group``'s proper point group.

    Parameters
    ----------
    quaternions
        (n, 4) unit quaternions (w, x, y, z).
    space_group
        International space group number, 1-230.
    """
    if not 1 <= int(space_group) <= 230:
        raise OrientationError(f"space group {space_group}: must be 1-230")
    from orix.quaternion import Orientation
    from orix.quaternion.symmetry import get_point_group

    symmetry = get_point_group(int(space_group), proper=True)
    ori = Orientation(np.asarray(quaternions, dtype=np.float64), symmetry=symmetry)
    reduced = ori.map_into_symmetry_reduced_zone().data
    return reduced * np.where(reduced[:, :1] < 0, -1.0, 1.0)


def quaternions_to_matrices(quaternions: np.ndarray) -> np.ndarray:
    """(n, 3, 3) active rotation matrices of unit quaternions (w, x, y, z).

    ``R @ v`` equals kikuchipy's ``rotate_vector(q, v)``: it takes a sample-frame direction to
    the crystal frame in which the master pattern is tabulated.
    """
    q = np.asarray(quaternions, dtype=np.float64)
    a, b, c, d = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack(
        [
            np.stack([a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)], -1),
            np.stack([2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)], -1),
            np.stack([2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d], -1),
        ],
        axis=-2,
    )
