"""Physics checks of the dynamical engine: point-group invariance of the master pattern.

Two complementary views, neither of which interpolates:

- :func:`direction_intensities` evaluates the engine's intensity ``I(k)`` at explicit beam
  directions (same crystal, Monte Carlo, Bethe selection and Bloch-wave backend as a master,
  without the symmetry fold), so ``I(k)`` and ``I(R k)`` can be compared for every point-group
  operator ``R``;
- :func:`grid_invariance` compares a computed master with itself remapped by the operators
  that carry the square-Lambert grid onto itself (x/y sign changes and swaps, z -> -z), which
  is where a wrong symmetry fold would show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from simulate.engine_dynamical import bethe_parameters, monte_carlo, resolve_device
from simulate.settings import SimulationSettings
from simulate.structure import build_crystal


def direction_intensities(
    structure: Mapping[str, Any],
    settings: SimulationSettings,
    directions: np.ndarray,
    bfactors_nm2: Sequence[float] | None = None,
) -> np.ndarray:
    """Engine intensity at unit beam directions (Cartesian crystal frame), highest energy bin.

    Parameters
    ----------
    directions
        ``(K, 3)`` beam directions (normalised here).

    Returns
    -------
    numpy.ndarray
        ``(K,)`` backscatter intensities, in the units of the master pattern.
    """
    import torch
    from de_ebsd import BlochPrismBackend
    from de_ebsd.crystal import compute_structure_factors
    from de_ebsd.diffraction.backends import SimulationInputs

    crystal = build_crystal(structure, bfactors_nm2)
    device = resolve_device(settings.device)
    depth, _ = monte_carlo(crystal, settings, device)
    energy = float(depth.energies_kev[-1])
    backend = BlochPrismBackend()
    backend.prepare(
        SimulationInputs(
            structure_factors=compute_structure_factors(crystal, energy, settings.dmin_nm),
            bethe=bethe_parameters(settings),
            monte_carlo=depth,
            device=device,
            dtype=torch.float64,
        )
    )
    k = np.asarray(directions, dtype=np.float64)
    k = k / np.linalg.norm(k, axis=1, keepdims=True)
    values = backend.intensities(torch.as_tensor(k, device=device))
    return values.detach().to("cpu").numpy().astype(np.float64)


def is_grid_operator(op: np.ndarray, tolerance: float = 1e-6) -> bool:
    """Whether ``op`` maps the square-Lambert grid onto itself.

    True for the operators that permute/negate x and y among themselves and keep or negate z
    (the square's eight symmetries, each with or without the hemisphere swap).
    """
    op = np.asarray(op, dtype=np.float64)
    block = op[:2, :2]
    exact = np.all(np.isclose(np.abs(op), np.round(np.abs(op)), atol=tolerance))
    z_only = np.allclose(op[2, :2], 0, atol=tolerance) and np.allclose(op[:2, 2], 0, atol=tolerance)
    return bool(exact and z_only and np.isclose(abs(np.linalg.det(block)), 1.0, atol=tolerance))


def remap_master(plane: np.ndarray, op: np.ndarray) -> np.ndarray:
    """The master ``plane`` (2, n, n) seen through grid operator ``op``: ``out(k) = I(op k)``.

    Square-Lambert coordinates transform like (x, y) under the square's symmetries, so pixel
    ``(row=Y, col=X)`` of hemisphere ``h`` reads pixel ``op (X, Y)`` of hemisphere
    ``h`` or ``1 - h`` (when ``op`` negates z).
    """
    if not is_grid_operator(op):
        raise ValueError("operator does not map the Lambert grid onto itself")
    n = plane.shape[-1]
    npx = (n - 1) // 2
    coords = np.arange(n) - npx
    rows, cols = np.meshgrid(coords, coords, indexing="ij")  # Y, X
    block = np.round(op[:2, :2]).astype(int)
    new_x = block[0, 0] * cols + block[0, 1] * rows
    new_y = block[1, 0] * cols + block[1, 1] * rows
    flip = op[2, 2] < 0
    out = np.empty_like(plane)
    for hemisphere in (0, 1):
        source = 1 - hemisphere if flip else hemisphere
        out[hemisphere] = plane[source][new_y + npx, new_x + npx]
    return out


def grid_invariance(plane: np.ndarray, ops: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """Pearson r between a master plane (2, n, n) and its remap by each grid operator.

    The equator ring is shared by both hemispheres and left out.
    """
    from simulate.validation import pearson

    n = plane.shape[-1]
    inner = np.zeros((n, n), dtype=bool)
    inner[1:-1, 1:-1] = True
    out = []
    for op in ops:
        if is_grid_operator(op):
            image = remap_master(plane, op)
            out.append((op, pearson(plane[:, inner], image[:, inner])))
    return out
