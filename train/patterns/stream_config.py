"""The stream's settings: what patterns are drawn, how they are rendered and batched.

Kept apart from the stream itself so that run configuration and batch rendering can name the
settings without pulling in the scheduler machinery of :mod:`train.patterns.stream`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from train.patterns.augment import AugmentConfig
from train.patterns.detector import Detector
from train.patterns.errors import PatternError
from train.patterns.preprocess import PreprocessConfig

__all__ = ["SCHEDULERS", "StreamConfig", "StreamError"]

SCHEDULERS = ("threads", "sync", "ray")


class StreamError(PatternError):
    """The stream cannot be built from this lake, material list or configuration."""


@dataclass(frozen=True)
class StreamConfig:
    """How patterns are drawn, rendered and batched.

    Parameters
    ----------
    label
        Structure attribute used as the class label (a flat key such as
        ``"disordered_spacegroup_number"``).
    detector
        Detector geometry; a square detector is re-sampled to ``image_size`` pixels.
    image_size
        Side of the projected patterns in pixels (the paper resized to 229).
    batch_size
        Patterns per batch per rank.
    energy
        ``"weighted"`` (Monte Carlo yield weighting, EMsoft EMEBSD) or a plane energy in keV.
    variants
        Master variants (B-factor sets) to draw from; each sample picks one uniformly among
        those present.
    seed
        Seeds the epoch plans, orientations and augmentations.
    balance
        Class-balanced sampling over ``label`` (else uniform over materials).
    preprocess
        Background correction and normalisation (None: raw intensities).
    augment
        Training augmentations (None: none, as for evaluation).
    prefetch
        Batches computed ahead of the consumer (bounds memory to ``prefetch + 1`` batches).
    scheduler
        "threads", "sync" or "ray" (Dask-on-Ray, CPU only); see the module docstring.
    device
        Torch device that projects ("cpu" or "cuda[:i]"); patterns are returned on it.
    master_cache_mb
        Memory for energy-reduced masters kept between batches (least recently used evicted).
    """

    label: str = "disordered_spacegroup_number"
    detector: Detector = field(default_factory=lambda: Detector.paper(shape=(229, 229)))
    image_size: int = 229
    batch_size: int = 32
    energy: str | float = "weighted"
    variants: tuple[str, ...] = ("default",)
    seed: int = 0
    balance: bool = True
    preprocess: PreprocessConfig | None = field(default_factory=PreprocessConfig)
    augment: AugmentConfig | None = None
    prefetch: int = 2
    scheduler: str = "threads"
    device: str = "cpu"
    master_cache_mb: float = 4096.0

    def __post_init__(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise StreamError(f"StreamConfig.scheduler={self.scheduler!r}: not in {SCHEDULERS}")
        if self.image_size < 2 or self.batch_size < 1 or self.prefetch < 0:
            raise StreamError("StreamConfig: need image_size >= 2, batch_size >= 1, prefetch >= 0")
        if not self.variants:
            raise StreamError("StreamConfig.variants: name at least one master variant")
        if self.scheduler == "ray" and self.device != "cpu":
            raise StreamError(
                f"StreamConfig.device={self.device!r}: Dask-on-Ray tasks render on CPU; "
                "use scheduler='threads' to project on the worker's GPU"
            )
        object.__setattr__(self, "variants", tuple(self.variants))

    @property
    def output_size(self) -> int:
        """Side S of the delivered (B, 1, S, S) patterns."""
        return self.augment.output_size(self.image_size) if self.augment else self.image_size

    def render_detector(self) -> Detector:
        """The detector patterns are projected on (square ones re-sampled to image_size)."""
        det = self.detector
        if det.shape[0] == det.shape[1] and det.shape[0] != self.image_size:
            return det.with_shape((self.image_size, self.image_size))
        return det
