"""Settings shared by every training run that streams patterns from the lake (supervised, MCD)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from train.errors import TrainingError
from train.patterns.preprocess import PreprocessConfig
from train.targets import DEFAULT_TARGET, label_attribute

if TYPE_CHECKING:
    from train.patterns.reading import PatternReading
    from train.patterns.stream import StreamConfig

MIN_IMAGE_SIZE = 16
"""Smallest network input and detector side in pixels (ResNets halve the input five times)."""

PAPER_RESIZE, PAPER_CROP = 229, 224
"""The paper resized patterns to 229 px and cropped 224 px at random while training."""

EVALUATION_SEED_OFFSET = 1_000_003
"""Added to a run's seed for its evaluation stream, so test orientations differ from training's."""


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
    cpu_threads
        torch CPU threads per worker (None: the CPUs Ray gave it, 1 in Ray Train). A setting of
        the run, not of the shell: another thread count sums in another order and trains other
        weights, so a recipe that trains on 2 threads says so and still rebuilds bit for bit.
    seed
        Seed of the model initialisation and the stream.
    stream_device
        Where the stream projects patterns ("cpu", or "cuda" to project on the worker's GPU).
    preprocess
        Background correction and normalisation of every pattern (stored with the run, and
        applied by evaluation and prediction).
    pc
        Bruker pattern centre (PCx, PCy, PCz) of the run's detector (None: the paper's, PCz
        1.73, a ~32 deg field; lab detectors sit near PCz 0.5-0.7, a field two to three times
        wider). Evaluation renders here and prediction re-projects patterns of known geometry
        onto it.
    pc_range
        Train across detector geometries: ((x_low, x_high), (y_low, y_high), (z_low, z_high))
        Bruker pattern-centre ranges each training pattern's PC is drawn from (None: the
        paper's detector only; a model then knows one field of view).
    degrade
        Train on realistic degradations too, so real cameras' patterns are not out of
        distribution: a name in :data:`DEGRADATIONS` (``"lab"``: weak bands on an uneven
        background with shot noise, blur, gamma, 2x binning; ``"lab-dim"``: the same down to
        the signal-to-noise of real binned patterns), ``True`` for ``"lab"``, ``False`` off.
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
    cpu_threads: int | None = None
    seed: int = 0
    stream_device: str = "cpu"
    preprocess: PreprocessConfig = PreprocessConfig()
    pc: tuple[float, float, float] | None = None
    pc_range: tuple[tuple[float, float], tuple[float, float], tuple[float, float]] | None = None
    degrade: bool | str = False
    fault: dict[str, Any] | None = field(default=None, compare=False)

    def refine(self, **changes: Any) -> Self:
        """Return a copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def detector(self):
        """The training detector: the paper's geometry with ``detector_shape`` pixels, at ``pc``
        when one is given."""
        from train.patterns.detector import Detector

        paper = Detector.paper(shape=tuple(self.detector_shape))
        if self.pc is None:
            return paper
        return dataclasses.replace(paper, pc=tuple(float(v) for v in self.pc))

    def stream_config(self, training: bool) -> StreamConfig:
        """The run's ``StreamConfig`` (augmented for training, plain for evaluation).

        Both deliver ``image_size`` pixels: training renders at ``image_size * 229/224`` and
        crops ``image_size`` at random with random flips (the paper: resize 229, crop 224);
        evaluation is how the run reads patterns (:meth:`reading`), with its own seed.
        """
        from train.patterns.stream import StreamConfig

        if not training:
            return self.reading(()).stream_config(
                self.batch_size, self.seed + EVALUATION_SEED_OFFSET, self.energy,
                tuple(self.variants), self.stream_device,
            )  # fmt: skip
        augment = self.training_augment()
        render_size = self.image_size
        if self.augment:
            render_size = round(self.image_size * PAPER_RESIZE / PAPER_CROP)
        return StreamConfig(
            label=label_attribute(self.label),
            detector=self.detector(),
            image_size=render_size,
            batch_size=self.batch_size,
            energy=self.energy,
            variants=tuple(self.variants),
            seed=self.seed,
            balance=True,
            preprocess=self.preprocess,
            augment=augment,
            device=self.stream_device,
        )

    def training_augment(self):
        """The training augmentation: the paper's random crop of ``image_size`` from a
        229/224-times larger render with both flips (``augment``), and PCs drawn from
        ``pc_range``; None when neither is asked for."""
        from train.patterns.augment import AugmentConfig

        degradations = degradations_of(self.degrade)
        if self.augment:
            return AugmentConfig(
                crop_size=self.image_size,
                flip_ud=True,
                flip_lr=True,
                pc_range=self.pc_range,
                **degradations,
            )
        if self.pc_range is None and not degradations:
            return None
        return AugmentConfig(pc_range=self.pc_range, **degradations)

    def reading(self, classes: list) -> PatternReading:
        """How this run reads a pattern (stored as the run's ``reading.json``)."""
        from train.patterns.reading import PatternReading

        return PatternReading(
            label=label_attribute(self.label),
            classes=tuple(classes),
            image_size=self.image_size,
            detector=self.detector(),
            preprocess=self.preprocess,
            augment=self.training_augment(),
        )

    def check_positive(self, names: tuple[str, ...], what: str) -> None:
        """Raise :class:`TrainingError` naming the first bad setting; ``what`` names the config.

        Checked on the driver before Ray starts, so a bad value never reaches a worker: the
        label, the architecture, the weights file, every field in ``names`` (>= 1),
        ``steps_per_epoch`` and ``cpu_threads`` (>= 1 when given), ``image_size``
        (>= :data:`MIN_IMAGE_SIZE`), the detector shape, ``lr`` (> 0), the variants and the
        energy.
        """
        from train.models import ARCHITECTURES

        label_attribute(self.label)
        if self.arch not in ARCHITECTURES:
            choices = ", ".join(ARCHITECTURES)
            raise TrainingError(f"{what} arch={self.arch!r}: unknown; choose one of {choices}")
        if self.weights_path is not None and not Path(self.weights_path).is_file():
            raise TrainingError(
                f"{what} weights_path={self.weights_path}: no such file (never downloaded)"
            )
        for name in names:
            _at_least(what, name, getattr(self, name), 1)
        if self.steps_per_epoch is not None:
            _at_least(what, "steps_per_epoch", self.steps_per_epoch, 1)
        if self.cpu_threads is not None and (
            isinstance(self.cpu_threads, bool)
            or not isinstance(self.cpu_threads, int)
            or self.cpu_threads < 1
        ):
            raise TrainingError(
                f"{what} cpu_threads={self.cpu_threads!r}: must be a whole number >= 1 "
                "(or None: the worker's Ray CPUs)"
            )
        _at_least(what, "image_size", self.image_size, MIN_IMAGE_SIZE)
        if len(self.detector_shape) != 2 or min(self.detector_shape) < MIN_IMAGE_SIZE:
            raise TrainingError(
                f"{what} detector_shape={tuple(self.detector_shape)}: need two sides "
                f">= {MIN_IMAGE_SIZE} px"
            )
        if not self.lr > 0:
            raise TrainingError(f"{what} lr={self.lr}: must be > 0")
        if not self.variants:
            raise TrainingError(f"{what} variants: name at least one master variant")
        if self.degrade not in (False, True, *DEGRADATIONS):
            choices = ", ".join(DEGRADATIONS)
            raise TrainingError(f"{what} degrade={self.degrade!r}: true, false or one of {choices}")
        if self.pc is not None and (len(self.pc) != 3 or not float(self.pc[2]) > 0):
            raise TrainingError(f"{what} pc={self.pc}: need (PCx, PCy, PCz) with PCz > 0")
        if self.pc_range is not None:
            from train.patterns.augment import AugmentConfig, AugmentError

            try:
                AugmentConfig(pc_range=self.pc_range)
            except (AugmentError, TypeError, ValueError) as exc:
                raise TrainingError(f"{what} pc_range: {exc}") from None
        if self.energy != "weighted" and not (
            isinstance(self.energy, int | float) and self.energy > 0
        ):
            raise TrainingError(f"{what} energy={self.energy!r}: 'weighted' or a keV value > 0")


LAB_DEGRADATIONS: dict[str, Any] = {
    "gamma_range": (0.8, 1.25),
    "band_contrast_range": (0.15, 0.5),
    "camera_dose_range": (200.0, 5000.0),
    "residual_background": 0.03,
    "blur_sigma_px": (0.0, 0.7),
    "binning_factors": (1, 1, 2),
}
"""What ``degrade`` adds: gamma 0.8-1.25, the camera's record (bands of 15-50 % contrast on an
uneven background, up to 3 %, with shot noise at 200-5000 electrons per pixel; see
:mod:`train.patterns.camera`), Gaussian blur of 0-0.7 px, and one pattern in three binned 2x."""

DIM_DEGRADATIONS: dict[str, Any] = {
    **LAB_DEGRADATIONS,
    "band_contrast_range": (0.08, 0.5),
    "camera_dose_range": (40.0, 5000.0),
    "blur_sigma_px": (0.0, 1.0),
    "fixed_pattern_noise": 0.08,
}
"""``lab`` reaching the signal-to-noise of real binned patterns: kikuchipy's 60 px Ni patterns
correlate r = 0.39-0.53 with their own simulation at the refined orientation, below the worst
``lab`` pattern (r ~0.58: 15 % bands at 200 e/px); bands of 8-50 %, 40-5000 e/px (down to
r ~0.2) and blur up to 1 px (``scripts/real_pattern_probe.py``, docs/RESULTS.md). And a
per-pixel gain texture up to 8 %: the Ni scan's static background departs 5 % from its own
5 px blur, and a file without its background keeps that texture."""

FALLOFF_DEGRADATIONS: dict[str, Any] = {**DIM_DEGRADATIONS, "falloff_tan": (1.2, 1.6)}
"""``lab-dim`` with the real patterns' fall-off away from the pattern centre: band contrast
falls to half at tan 1.2 from the centre (about 50 deg) and the backscatter intensity at tan 1.6
(the counts flat-fielded by it, so the outer parts are noisier). On kikuchipy's Ni scan the
correlation of real with simulated high-passed patterns falls, ring by ring (tan 0-0.3, ...,
1.6-2.2), 0.67, 0.58, 0.51, 0.40, 0.22, -0.03; our Ni recorded with 15 % bands at 300 e/px gives
0.65, 0.58, 0.45, 0.40, 0.23, 0.18 with the fall-off and 0.68, 0.66, 0.63, 0.67, 0.61, 0.56
without; the recorded static background is 0.83, 0.76, 0.68, 0.58, 0.52, 0.32 of its peak
(``scripts/angular_falloff_check.py``)."""

CAMERA_DEGRADATIONS: dict[str, Any] = {**FALLOFF_DEGRADATIONS, "fixed_pattern_grain_px": 1.2}
"""``lab-falloff`` with a grainy camera texture instead of a white one: each pattern's gain
texture is blurred by a sigma drawn in 0-1.2 px (lag-1 autocorrelation 0 to 0.85). The Ni
scan's recorded background, over its own 2 px blur, is 2.2 % rms with lag-1 autocorrelation
0.52 (sigma ~0.6 px); at 1 % rms such a texture made the shipped model uncertain on all nine
flat-fielded real patterns where white texture left its Fm-3m calls
(``scripts/texture_tolerance.py``, docs/RESULTS.md)."""

DEGRADATIONS: dict[str, dict[str, Any]] = {
    "lab": LAB_DEGRADATIONS,
    "lab-dim": DIM_DEGRADATIONS,
    "lab-falloff": FALLOFF_DEGRADATIONS,
    "lab-camera": CAMERA_DEGRADATIONS,
}
"""Named degradation sets for ``SupervisedConfig.degrade`` (``True`` is ``"lab"``)."""


def degradations_of(degrade: bool | str) -> dict[str, Any]:
    """The augmentation settings ``degrade`` names (empty when off)."""
    if degrade is False or degrade is None:
        return {}
    return DEGRADATIONS["lab" if degrade is True else str(degrade)]


def _at_least(what: str, name: str, value: Any, minimum: int) -> None:
    """Raise :class:`TrainingError` unless ``value`` is a number >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise TrainingError(f"{what} {name}={value!r}: must be >= {minimum}")
