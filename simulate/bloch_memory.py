"""Size de-ebsd's Bloch-wave batches to the memory a node can give one master.

de-ebsd's batched backend classifies 1,024 beam directions at a time into a
``[directions, candidates, candidates]`` tensor and solves 4,096 directions' ``[strong, strong]``
matrices at a time. For a usual cell that is a few hundred MB; for a needle cell (a 1.83 nm,
c 0.18 nm, 24 atoms) the candidate count near the long axis asked for one 9.8 GB array and
Ray's memory monitor killed the actor (docs/SIMULATE.md). Before computing, we count the beams
of a sample of directions through de-ebsd's public reflection classifier, shrink the batch
sizes until the estimated peak fits the budget, and refuse (a recorded failure naming the sizes)
only when a single direction would not fit.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from simulate.errors import SimulateInputError

#: Default share of the node's physical memory one master may use (two actors on 2 cores).
DEFAULT_BUDGET_FRACTION = 0.25

#: Environment variable that sets the budget in GB, overriding the default share.
BUDGET_ENV = "EBSDLAKE_MASTER_MEMORY_GB"

#: Sampled directions are a few hundred of the ~10^4 a master solves; the largest counts they
#: show are raised by this factor so unsampled directions near a dense zone axis still fit.
SAFETY = 1.5

#: Temporaries per ``[candidates, candidates]`` element in classification (complex lookup,
#: modulus, ratio, mask), bytes per unit of real itemsize.
CLASSIFY_REALS_PER_ELEMENT = 5

#: Complex ``[strong, strong]`` arrays alive at once in one solve (matrix, exponential and its
#: workspace, depth sum, product with S_gh).
SOLVE_COMPLEX_ARRAYS = 8


@dataclass(frozen=True)
class BeamCounts:
    """Largest beam counts over the sampled directions (before the safety factor)."""

    reflections: int
    candidates: int
    strong: int
    weak: int


@dataclass(frozen=True)
class BatchPlan:
    """Batch sizes for de-ebsd's ``BlochPrismBackend`` and the peak they are estimated at.

    ``class_chunk`` directions are classified at once, ``block`` directions' masks are held,
    ``matmul_batch`` directions are solved at once; ``peak_bytes`` is the estimate, ``budget_bytes``
    the limit it was fitted to.
    """

    class_chunk: int
    block: int
    matmul_batch: int
    peak_bytes: int
    budget_bytes: int
    counts: BeamCounts

    def apply(self, backend) -> None:
        """Set the batch sizes on a ``BlochPrismBackend`` (attributes it reads per compute)."""
        backend.class_chunk = self.class_chunk
        backend.block = self.block
        backend.matmul_batch = self.matmul_batch


def memory_budget_bytes() -> int:
    """Bytes one master may use: ``$EBSDLAKE_MASTER_MEMORY_GB`` or a quarter of physical memory."""
    configured = os.environ.get(BUDGET_ENV, "").strip()
    if configured:
        try:
            gigabytes = float(configured)
        except ValueError:
            raise SimulateInputError(f"${BUDGET_ENV}={configured!r}: not a number of GB") from None
        if gigabytes <= 0:
            raise SimulateInputError(f"${BUDGET_ENV}={configured!r}: must be > 0 GB")
        return int(gigabytes * 1e9)
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return int(physical * DEFAULT_BUDGET_FRACTION)


def sample_directions(count: int = 64) -> np.ndarray:
    """``count`` unit vectors spread evenly over the upper hemisphere (Fibonacci lattice)."""
    index = np.arange(count) + 0.5
    z = 1.0 - index / count
    radius = np.sqrt(1.0 - z * z)
    azimuth = index * math.pi * (3.0 - math.sqrt(5.0))
    return np.stack([radius * np.cos(azimuth), radius * np.sin(azimuth), z], axis=1)


def beam_counts(simulator, directions: np.ndarray) -> BeamCounts:
    """The largest candidate, strong and weak beam counts de-ebsd classifies for ``directions``.

    The sample includes the crystal's basis vectors (zone axes, where beams are densest).
    """
    from de_ebsd.diffraction.reflections import STRONG, WEAK

    axes = _unit_rows(np.asarray(simulator.crystal.direct_structure_matrix).T)
    sample = np.concatenate([directions, axes, -axes])
    candidates = strong = weak = 0
    for k in sample:
        listed = simulator.reflections(k)
        candidates = max(candidates, len(listed))
        strong = max(strong, int(np.count_nonzero(listed.status == STRONG)))
        weak = max(weak, int(np.count_nonzero(listed.status == WEAK)))
    reflections = len(simulator.reflections()) + 1
    return BeamCounts(reflections, candidates, strong, weak)


def plan_batches(counts: BeamCounts, budget_bytes: int, complex_bytes: int = 8) -> BatchPlan:
    """Largest de-ebsd batch sizes (capped at its defaults) whose estimated peak fits the budget.

    Raises
    ------
    SimulateInputError
        When one direction alone is estimated above the budget.
    """
    real = complex_bytes // 2
    candidates = math.ceil(counts.candidates * SAFETY)
    strong = math.ceil(counts.strong * SAFETY)
    weak = math.ceil(counts.weak * SAFETY)
    per_classified = candidates * candidates * real * CLASSIFY_REALS_PER_ELEMENT
    per_masked = counts.reflections * (2 + real)
    per_solved = strong * strong * complex_bytes * SOLVE_COMPLEX_ARRAYS + 2 * strong * weak * (
        complex_bytes
    )
    smallest = per_classified + per_masked + per_solved
    if smallest > budget_bytes:
        raise SimulateInputError(
            f"too large for this node: one beam direction needs ~{smallest / 1e9:.1f} GB "
            f"({counts.candidates} candidate, {counts.strong} strong beams; "
            f"{counts.reflections} reflections), budget {budget_bytes / 1e9:.1f} GB "
            f"(${BUDGET_ENV}); raise dmin or the budget"
        )
    share = budget_bytes // 3
    class_chunk = _fit(share, per_classified, 1024)
    block = max(class_chunk, _fit(share, per_masked, 65536))
    matmul_batch = _fit(share, per_solved, 4096)
    peak = class_chunk * per_classified + block * per_masked + matmul_batch * per_solved
    return BatchPlan(class_chunk, block, matmul_batch, int(peak), int(budget_bytes), counts)


def _fit(share: int, per_direction: int, default: int) -> int:
    """How many directions of ``per_direction`` bytes fit in ``share`` (1 to ``default``)."""
    return int(max(1, min(default, share // max(per_direction, 1))))


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows of ``matrix`` scaled to unit length."""
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
