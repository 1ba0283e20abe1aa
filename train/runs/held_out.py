"""Simulated patterns of held-out materials, read the way a run reads patterns.

Evaluation and calibration both need exactly N projections of each of some materials, rendered
with the run's detector, input size and pre-processing (its ``reading.json``), never augmented,
with a seed of their own. This is the one place that builds that stream.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator

import torch

from train.patterns.augment import AugmentConfig
from train.patterns.sampling import material_plan
from train.patterns.stream import PatternStream
from train.runs.inference import LoadedRun


def held_out_batches(
    loaded: LoadedRun,
    lake_url: str,
    storage_options: dict | None,
    material_ids: list[str],
    per_material: int,
    seed_offset: int,
    augment: AugmentConfig | None = None,
    variants: tuple[str, ...] | None = None,
) -> Iterator[tuple[torch.Tensor, list, list[str]]]:
    """Yield ``(patterns (B, 1, S, S), true label values, material ids)`` batches holding
    exactly ``per_material`` patterns of each material (the padding of the last batch is cut).

    ``seed_offset`` is added to the run's seed, so evaluation and calibration draw other
    orientations than training and than each other. ``augment``: render them degraded as in
    training instead (for diagnostics; evaluation never does). ``variants``: read these master
    variants instead of the run's (masters of the same materials at other settings, e.g. another
    beam energy).
    """
    settings = loaded.settings
    stream_config = loaded.reading.stream_config(
        batch_size=int(settings.get("batch_size", 128)),
        seed=int(settings.get("seed", 0)) + seed_offset,
        energy=settings.get("energy", "weighted"),
        variants=variants or tuple(settings.get("variants") or ("default",)),
        device=str(settings.get("stream_device", "cpu")),
    )
    if augment is not None:
        stream_config = dataclasses.replace(stream_config, augment=augment)
    stream = PatternStream(lake_url, storage_options, list(material_ids), stream_config)
    total = len(material_ids) * per_material
    batch = min(stream_config.batch_size, total)
    plan = material_plan(len(material_ids), per_material, batch, seed=stream_config.seed)
    done = 0
    for patterns, labels, mids in stream.batches(plan=plan):
        keep = total - done
        done += min(keep, len(labels))
        values = [stream.classes[i] for i in labels[:keep].tolist()]
        yield patterns[:keep], values, list(mids)[:keep]


def score_materials(
    loaded: LoadedRun,
    lake_url: str,
    storage_options: dict | None,
    material_ids: list[str],
    per_material: int,
    variant: str = "default",
) -> dict:
    """A run's or package's accuracy on ``per_material`` projections of each material's master
    ``variant``, drawn as its evaluation draws them (same seed offset): accuracy, 95 % interval
    over materials, per class, per material, the confusion counts and each material's calls
    (label value -> patterns), as JSON-ready values.

    For scripts that score a model on materials its card does not hold (other beam energies,
    phases outside its recipe)."""
    from train.run_config import EVALUATION_SEED_OFFSET
    from train.runs.scores import mean_interval, score

    true_values, predicted, groups = [], [], []
    batches = held_out_batches(
        loaded, lake_url, storage_options, material_ids, per_material, EVALUATION_SEED_OFFSET,
        variants=(variant,),
    )  # fmt: skip
    for patterns, values, mids in batches:
        indices = loaded.probabilities(patterns).argmax(1).tolist()
        predicted += [loaded.classes[i] for i in indices]
        true_values += values
        groups += mids
    evaluation = score("materials", loaded.classes, true_values, predicted, groups)
    calls: dict[str, Counter] = {m: Counter() for m in material_ids}
    for material, value in zip(groups, predicted, strict=True):
        calls[material][str(value)] += 1
    return {
        "accuracy": evaluation.accuracy,
        "interval_over_materials": mean_interval(list(evaluation.per_material.values())),
        "per_class": {str(k): v for k, v in evaluation.per_class.items()},
        "per_material": evaluation.per_material,
        "n_patterns": evaluation.n_patterns,
        "confusion": {
            "rows": [str(v) for v in evaluation.row_labels],
            "columns": [str(v) for v in evaluation.classes],
            "counts": evaluation.confusion.tolist(),
        },
        "calls_by_material": {m: dict(c.most_common()) for m, c in calls.items()},
    }
