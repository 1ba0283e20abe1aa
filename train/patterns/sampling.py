"""Who is sampled: material hold-out folds, class balance, and per-rank shards of an epoch.

Everything here is a pure function of its arguments and a seed, so every Ray Train worker
computes the same plan and takes only its own slice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from train.patterns.errors import PatternError


class SamplingError(PatternError):
    """A sampling request cannot be met (empty class, more folds than materials, bad rank)."""


def grouped_folds(
    material_ids: Sequence[str],
    labels: Sequence[object],
    k: int = 5,
    seed: int = 0,
) -> list[tuple[list[str], list[str]]]:
    """Split materials into ``k`` hold-out folds, stratified by label, as the paper did.

    Each label's materials are shuffled and dealt round-robin into the folds (the paper split
    each space-group type's master patterns into 5 folds), so no material is in two test sets
    and every pattern of a material stays on one side of a split.

    Parameters
    ----------
    material_ids
        Unique material ids.
    labels
        Label of each material (same order).
    k
        Number of folds (>= 2).
    seed
        Shuffle seed.

    Returns
    -------
    list of (train_ids, test_ids)
        ``k`` pairs; ``test_ids`` are disjoint across folds and cover all materials.
    """
    ids = list(material_ids)
    if len(ids) != len(labels):
        raise SamplingError(f"{len(ids)} material ids but {len(labels)} labels")
    if len(set(ids)) != len(ids):
        raise SamplingError("material_ids: duplicates would leak a material across folds")
    if k < 2 or k > len(ids):
        raise SamplingError(f"k={k} folds: need 2 <= k <= {len(ids)} materials")
    rng = np.random.default_rng(seed)
    fold_of: dict[str, int] = {}
    offset = 0
    for label in sorted(set(labels), key=str):
        members = [m for m, lab in zip(ids, labels, strict=True) if lab == label]
        for j, pos in enumerate(rng.permutation(len(members))):
            fold_of[members[pos]] = (offset + j) % k
        offset += len(members)  # continue dealing where the last class stopped
    folds = []
    for f in range(k):
        test = [m for m in ids if fold_of[m] == f]
        train = [m for m in ids if fold_of[m] != f]
        folds.append((train, test))
    return folds


def balanced_indices(labels: Sequence[object], n: int, seed: int | np.random.Generator = 0):
    """Draw ``n`` indices into ``labels`` with every label equally likely.

    A label is drawn uniformly, then one of its members uniformly: each class gets ~n/C
    samples whatever its size (the paper balanced patterns per space-group type).

    Returns
    -------
    numpy.ndarray
        int64 (n,) indices into ``labels``.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    keys = [str(v) for v in labels]
    classes = sorted(set(keys))
    if not classes:
        raise SamplingError("balanced_indices: no labels to sample from")
    members = [np.flatnonzero(np.asarray(keys) == c) for c in classes]
    cls = rng.integers(0, len(classes), size=int(n))
    pick = rng.random(int(n))
    out = np.empty(int(n), dtype=np.int64)
    for c, idx in enumerate(members):
        hit = cls == c
        out[hit] = idx[(pick[hit] * idx.size).astype(np.int64)]
    return out


@dataclass(frozen=True)
class EpochPlan:
    """The samples of one rank's share of an epoch.

    Attributes
    ----------
    material_index
        int64 (steps, B) index into the stream's material list.
    sample_id
        int64 (steps, B) global sample number within the epoch (unique across ranks).
    seeds
        int64 (steps,) seed for each batch's orientations and augmentations.
    """

    material_index: np.ndarray
    sample_id: np.ndarray
    seeds: np.ndarray


def epoch_plan(
    labels: Sequence[object],
    batch_size: int,
    steps: int,
    epoch: int,
    rank: int = 0,
    world_size: int = 1,
    seed: int = 0,
    balance: bool = True,
) -> EpochPlan:
    """This rank's batches of an epoch, identical on every worker that asks.

    Global batch ``s`` of an epoch holds ``world_size * batch_size`` samples drawn from
    (``seed``, ``epoch``, ``s``) alone, so a plan's first batches do not depend on ``steps``;
    it is cut into ``world_size`` consecutive slices and
    rank ``r`` takes slice ``r``, so ranks never share a sample within an epoch.

    Parameters
    ----------
    labels
        Label per material (the stream's material order).
    batch_size
        Patterns per batch per rank.
    steps
        Batches per rank.
    epoch, rank, world_size, seed
        Where this plan sits; the same tuple always gives the same plan.
    balance
        Class-balanced draws (:func:`balanced_indices`) or uniform over materials.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise SamplingError(f"rank {rank} of world_size {world_size}: need 0 <= rank < world_size")
    if batch_size < 1 or steps < 0:
        raise SamplingError(f"batch_size {batch_size}, steps {steps}: need >= 1 and >= 0")
    per_step = world_size * batch_size
    if not balance and len(labels) == 0:
        raise SamplingError("epoch_plan: no materials to sample from")
    picks = np.empty((steps, per_step), dtype=np.int64)
    batch_seeds = np.empty((steps, world_size), dtype=np.int64)
    for step in range(steps):  # each global step from its own stream: independent of `steps`
        rng = np.random.default_rng([int(seed), int(epoch), step, 0x5EED])
        if balance:
            picks[step] = balanced_indices(labels, per_step, rng)
        else:
            picks[step] = rng.integers(0, len(labels), size=per_step)
        batch_seeds[step] = rng.integers(0, 2**62, size=world_size)
    shaped = picks.reshape(steps, world_size, batch_size)
    ids = np.arange(steps * per_step, dtype=np.int64).reshape(steps, world_size, batch_size)
    return EpochPlan(
        material_index=shaped[:, rank].copy(),
        sample_id=ids[:, rank].copy(),
        seeds=batch_seeds[:, rank].copy(),
    )


def material_plan(n_materials: int, per_material: int, batch_size: int, seed: int = 0) -> EpochPlan:
    """A plan with exactly ``per_material`` samples of each material, in material order.

    Evaluation scores every test material on the same number of patterns (the epoch plans draw
    materials at random, which leaves some with more and some with fewer). Samples are laid out
    material by material and cut into batches of ``batch_size``; the last batch is filled up
    with repeats of the last material, marked by ``sample_id`` -1, so a caller keeps the first
    ``n_materials * per_material`` samples.

    Parameters
    ----------
    n_materials
        Materials in the stream (indices ``0 .. n_materials - 1``).
    per_material
        Samples of each material (>= 1).
    batch_size
        Patterns per batch (>= 1).
    seed
        Seed of the batches' orientations: the same arguments always give the same plan.
    """
    if n_materials < 1 or per_material < 1 or batch_size < 1:
        raise SamplingError(
            f"material_plan: {n_materials} materials, {per_material} per material, batch size "
            f"{batch_size}: need >= 1 each"
        )
    total = n_materials * per_material
    steps = -(-total // batch_size)
    order = np.repeat(np.arange(n_materials, dtype=np.int64), per_material)
    padded = np.concatenate([order, np.full(steps * batch_size - total, n_materials - 1)])
    ids = np.arange(steps * batch_size, dtype=np.int64)
    ids[total:] = -1
    rng = np.random.default_rng([int(seed), 0xE7A1])
    return EpochPlan(
        material_index=padded.reshape(steps, batch_size),
        sample_id=ids.reshape(steps, batch_size),
        seeds=rng.integers(0, 2**62, size=steps),
    )
