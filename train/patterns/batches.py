"""One batch of patterns: project, degrade, pre-process and augment a mixed-material batch.

:func:`render_batch` is the body of each Dask task of :class:`train.patterns.stream.PatternStream`;
it needs only a :class:`BatchSpec`, a projector and the batch's masters, so it runs the same in
the training worker's threads and as a Dask-on-Ray task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from train.patterns.augment import degrade, geometric, jittered_pcs
from train.patterns.orientations import sample_so3
from train.patterns.preprocess import preprocess_tensor
from train.patterns.projection import Projector
from train.patterns.stream_config import StreamConfig

__all__ = ["BatchSpec", "render_batch", "render_batch_array"]


@dataclass(frozen=True)
class BatchSpec:
    """Everything one batch task needs besides the masters (small, picklable)."""

    material_slot: np.ndarray  # (B,) index into the task's master list
    seed: int
    config: StreamConfig


def render_batch_array(spec: BatchSpec, projector: Projector, *masters: np.ndarray) -> np.ndarray:
    """:func:`render_batch` returning a NumPy array (Dask-on-Ray: Ray stores NumPy arrays
    without pickling them, half the cost of a tensor through the object store)."""
    return render_batch(spec, projector, *masters).cpu().numpy()


def render_batch(spec: BatchSpec, projector: Projector, *masters: np.ndarray) -> torch.Tensor:
    """Project, degrade, pre-process and augment one batch; returns (B, 1, S, S) float32.

    Masters of different sizes are projected in groups of equal size.
    """
    cfg = spec.config
    n = spec.material_slot.shape[0]
    gen = torch.Generator().manual_seed(spec.seed % (2**63))
    quats = sample_so3(n, np.random.default_rng([spec.seed, 1]))
    pcs = None
    if cfg.augment is not None:
        augment = cfg.augment
        pcs = jittered_pcs(projector.detector.pc, n, augment.pc_jitter, gen, augment.pc_range)
    x = _project_groups(projector, masters, spec.material_slot, quats, pcs)
    if cfg.augment is not None:
        centres = pcs if pcs is not None else np.tile(projector.detector.pc, (n, 1))
        x = degrade(x, cfg.augment, gen, centres)
    if tuple(x.shape[-2:]) != (cfg.image_size, cfg.image_size):
        x = torch.nn.functional.interpolate(
            x[:, None], size=(cfg.image_size,) * 2, mode="bilinear", antialias=True
        )[:, 0]
    if cfg.preprocess is not None:
        x = preprocess_tensor(x, cfg.preprocess)
    if cfg.augment is not None:
        x = geometric(x, cfg.augment, gen)
    return x.unsqueeze(1).contiguous()


def _project_groups(
    projector: Projector,
    masters: Sequence[np.ndarray],
    material_slot: np.ndarray,
    quats: np.ndarray,
    pcs: np.ndarray | None,
) -> torch.Tensor:
    """(B, H, W) raw patterns; masters of each size are stacked and projected in one call."""
    sizes = np.array([m.shape[-1] for m in masters])
    groups = np.unique(sizes)
    raw = None
    for size in groups:
        members = np.flatnonzero(sizes == size)
        pick = np.flatnonzero(np.isin(material_slot, members))
        stack = _stack([masters[i] for i in members])
        local = np.searchsorted(members, material_slot[pick])
        part = projector(
            stack.to(projector.device), local, quats[pick], None if pcs is None else pcs[pick]
        )
        if groups.size == 1:
            return part
        if raw is None:
            shape = (material_slot.shape[0], *projector.detector.shape)
            raw = torch.empty(shape, dtype=torch.float32, device=projector.device)
        raw[torch.as_tensor(pick, device=projector.device)] = part
    return raw


def _stack(masters: Sequence[Any]) -> torch.Tensor:
    """(M, 2, n, n) copy of tensors (threads) or read-only object-store arrays (Dask-on-Ray)."""
    if all(isinstance(m, torch.Tensor) for m in masters):
        return torch.stack(list(masters))
    return torch.from_numpy(np.stack([np.asarray(m, dtype=np.float32) for m in masters]))
