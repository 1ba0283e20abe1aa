"""Settings shared by every training run that streams patterns from the lake (supervised, MCD)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Self

from train.targets import DEFAULT_TARGET, label_attribute
from train.training_errors import TrainingError


@dataclass(frozen=True)
class StreamedRunConfig:
    """What the stream and Ray Train need, whatever the training loop (paper defaults).

    Attributes
    ----------
    label
        Label target (``train.targets.LABEL_TARGETS``), default the disordered space group.
    arch
        Backbone (``train.models.ARCHITECTURES``): ``resnet18`` supervised (paper),
        ``resnet50`` MCD (paper), ``resnet10`` for tiny tests.
    weights_path
        Optional local ImageNet state dict (never downloaded).
    epochs
        Training epochs.
    patterns_per_material
        Projections per training material and epoch; sets the epoch length (paper: 100).
    steps_per_epoch
        Explicit optimiser steps per epoch per worker; overrides ``patterns_per_material``.
    batch_size
        Patterns per step per worker (paper: 128).
    image_size
        Side of the square network input in pixels (paper: 224, cropped from 229).
    detector_shape
        Detector (rows, cols) in pixels before resizing to ``image_size``.
    lr
        Learning rate of the run's optimiser.
    augment
        Random crop and flips while training (the paper's augmentation).
    variants
        Master variants to project (``"default"`` and B-factor variants).
    energy
        ``"weighted"`` (Monte Carlo yield) or one energy plane in keV.
    num_workers, use_gpu, max_failures
        Ray Train scaling and fault tolerance.
    seed
        Seed of the model initialisation and the stream.
    stream_device
        Where the stream projects patterns ("cpu", or "cuda" to project on the worker's GPU).
    fault
        Testing hook: ``{"rank", "epoch", "step", "marker"}`` kills that worker once.
    """

    label: str = DEFAULT_TARGET
    arch: str = "resnet18"
    weights_path: str | None = None
    epochs: int = 10
    patterns_per_material: int = 100
    steps_per_epoch: int | None = None
    batch_size: int = 128
    image_size: int = 224
    detector_shape: tuple[int, int] = (240, 240)
    lr: float = 1e-3
    augment: bool = True
    variants: tuple[str, ...] = ("default",)
    energy: str | float = "weighted"
    num_workers: int = 1
    use_gpu: bool = False
    max_failures: int = 2
    seed: int = 0
    stream_device: str = "cpu"
    fault: dict[str, Any] | None = field(default=None, compare=False)

    def refine(self, **changes: Any) -> Self:
        """Return a copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def check_positive(self, names: tuple[str, ...], what: str) -> None:
        """Raise :class:`TrainingError` naming the label or the first field in ``names`` (or
        ``lr``) that is not positive; ``what`` names the config in the message."""
        label_attribute(self.label)
        for name in names:
            if getattr(self, name) < 1:
                raise TrainingError(f"{what} {name}={getattr(self, name)}: must be >= 1")
        if self.lr <= 0:
            raise TrainingError(f"{what} lr={self.lr}: must be > 0")
