"""Does a model say "uncertain" where it should? Phases outside its classes, and noise.

A classifier of five cubic groups has no right answer for a hexagonal or a tetragonal phase, nor
for a frame of noise; what it can do is withhold the call. This scores the share of such
patterns a loaded run (or model package) calls "uncertain" with its calibrated threshold:
simulated patterns of out-of-class materials read the way the run reads patterns, and Poisson
noise frames read the way ``predict`` reads a file of unknown geometry.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from train.patterns.experimental import image_quality
from train.patterns.network_input import network_input
from train.patterns.scan_geometry import ScanGeometry
from train.runs.calibration import VERDICTS, verdicts
from train.runs.held_out import held_out_batches
from train.runs.inference import LoadedRun

OUT_OF_CLASS_SEED_OFFSET = 30_000
"""Added to the run's seed so these orientations differ from training, evaluation and
calibration."""


@dataclass(frozen=True)
class UncertainShare:
    """How one out-of-class source was called.

    Attributes
    ----------
    source
        Material id, or ``"noise"``.
    label
        Its true label value (space group number for the cubic targets; None for noise).
    patterns
        Patterns scored.
    uncertain
        Share called "uncertain" (0-1); the higher the better here.
    calls
        Confident calls by class symbol or value, most common first.
    """

    source: str
    label: object
    patterns: int
    uncertain: float
    calls: dict[str, int]

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return asdict(self)


def _share(source: str, label, loaded: LoadedRun, probabilities: np.ndarray, quality=None):
    said = verdicts(probabilities, loaded.threshold, quality)
    uncertain = [v == VERDICTS[1] for v in said]
    top = probabilities.argmax(1)
    confident = Counter(
        str(loaded.classes[i]) for i, u in zip(top, uncertain, strict=True) if not u
    )
    return UncertainShare(
        source, label, len(said), float(np.mean(uncertain)) if said else 0.0,
        dict(confident.most_common()),
    )  # fmt: skip


def out_of_class_shares(
    loaded: LoadedRun,
    lake_url: str,
    storage_options: dict | None,
    material_ids: list[str],
    per_material: int,
) -> list[UncertainShare]:
    """The uncertain share of ``per_material`` simulated patterns of each material (rendered on
    the run's detector with its pre-processing, other orientations than any run stage)."""
    probabilities: dict[str, list[np.ndarray]] = {m: [] for m in material_ids}
    labels: dict[str, object] = {}
    for patterns, values, mids in held_out_batches(
        loaded, lake_url, storage_options, material_ids, per_material, OUT_OF_CLASS_SEED_OFFSET
    ):
        batch = loaded.probabilities(patterns).numpy()
        for row, value, mid in zip(batch, values, mids, strict=True):
            probabilities[mid].append(row)
            labels[mid] = value
    return [
        _share(mid, labels.get(mid), loaded, np.stack(rows))
        for mid, rows in probabilities.items()
        if rows
    ]


def noise_share(
    loaded: LoadedRun, frames: int = 32, side: int = 96, seed: int = 0
) -> UncertainShare:
    """The uncertain share of ``frames`` Poisson-noise frames (mean 100 counts, ``side`` px
    square) read as ``predict`` reads a file with no geometry: centre crop, the run's
    pre-processing, image quality checked."""
    rng = np.random.default_rng(seed)
    noise = rng.poisson(100.0, size=(frames, side, side)).astype(np.float32)
    prepared = network_input(noise, ScanGeometry(), loaded.reading)
    probabilities = loaded.probabilities(prepared).numpy()
    return _share("noise", None, loaded, probabilities, image_quality(noise))
