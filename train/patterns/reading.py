"""How a run reads a pattern: the settings it was trained with, stored with the run.

A run's ``reading.json`` holds a :class:`PatternReading`: the label and classes, the network
input size, the training detector geometry, the pre-processing and the training augmentation.
Evaluation, prediction and the MCD target set read patterns through it, so a run trained with
other settings than the defaults is read the way it was trained.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from train.patterns.augment import AugmentConfig
from train.patterns.detector import Detector
from train.patterns.errors import PatternError, one_line
from train.patterns.preprocess import PreprocessConfig
from train.patterns.stream import StreamConfig

READING_FORMAT = 1
"""Version of the stored form; a newer one is refused with a message."""


@dataclass(frozen=True)
class PatternReading:
    """Everything needed to turn a pattern into this run's network input.

    Attributes
    ----------
    label
        Structure attribute the run predicts (``"disordered_spacegroup_number"``...).
    classes
        Label values in logit order.
    image_size
        Side of the square network input in pixels.
    detector
        Detector geometry the training patterns were projected on (pattern centre in Bruker's
        convention, pixel size in um, tilts in degrees).
    preprocess
        Background correction and normalisation applied to every pattern.
    augment
        Training augmentation (None: none); evaluation and prediction never augment.
    """

    label: str
    classes: tuple
    image_size: int
    detector: Detector
    preprocess: PreprocessConfig
    augment: AugmentConfig | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``reading.json`` holds)."""
        return {
            "format": READING_FORMAT,
            "label": self.label,
            "classes": list(self.classes),
            "image_size": int(self.image_size),
            "detector": dataclasses.asdict(self.detector),
            "preprocess": dataclasses.asdict(self.preprocess),
            "augment": None if self.augment is None else dataclasses.asdict(self.augment),
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "reading.json") -> PatternReading:
        """Rebuild from :meth:`to_dict`'s form; a bad field is a :class:`PatternError` naming
        ``where`` and the field."""
        if not isinstance(data, dict):
            raise PatternError(f"{where}: not a JSON object")
        if data.get("format", READING_FORMAT) > READING_FORMAT:
            raise PatternError(
                f"{where}: format {data['format']} is newer than this ebsdlake reads "
                f"({READING_FORMAT}); upgrade ebsdlake"
            )
        for key in ("label", "classes", "image_size", "detector", "preprocess"):
            if key not in data:
                raise PatternError(f"{where}: lacks {key!r}")
        try:
            augment = data.get("augment")
            return cls(
                label=str(data["label"]),
                classes=tuple(data["classes"]),
                image_size=int(data["image_size"]),
                detector=Detector(**_tuples(data["detector"])),
                preprocess=PreprocessConfig(**data["preprocess"]),
                augment=None if augment is None else AugmentConfig(**_tuples(augment)),
            )
        except (TypeError, ValueError) as exc:
            raise PatternError(f"{where}: {one_line(exc)}") from None

    def stream_config(
        self,
        batch_size: int,
        seed: int,
        energy: str | float = "weighted",
        variants: tuple[str, ...] = ("default",),
        device: str = "cpu",
    ) -> StreamConfig:
        """The evaluation stream of these settings: the training geometry and pre-processing,
        no augmentation, no class balancing."""
        return StreamConfig(
            label=self.label,
            detector=self.detector,
            image_size=self.image_size,
            batch_size=batch_size,
            energy=energy,
            variants=tuple(variants),
            seed=seed,
            balance=False,
            preprocess=self.preprocess,
            augment=None,
            device=device,
        )


def _tuples(fields: dict[str, Any]) -> dict[str, Any]:
    """JSON lists back to the tuples the frozen configs hold."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
