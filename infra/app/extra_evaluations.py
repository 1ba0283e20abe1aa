"""Evaluations a model build adds beyond the held-out materials: whole space groups and whole
structure types never trained on, and a Laue-class model's calls read as crystal systems.

Each is scored like the held-out set (per class, per material with a 95 % interval over
materials, a confusion matrix) and lands in the package: ``card.json`` under
``extra_evaluations``, a section of ``card.md`` and a ``confusion-<name>.png`` figure.
"""

from __future__ import annotations

from pathlib import Path

from infra.app.card_sections import add_to_card
from lake.laue_classes import LAUE_CLASS_SYSTEM, crystal_system_of_laue
from train.runs.scores import Evaluation

CRYSTAL_SYSTEMS = tuple(dict.fromkeys(LAUE_CLASS_SYSTEM.values()))
"""The seven crystal systems, lowest symmetry first."""

TITLES = {
    "held_out": "held-out materials",
    "unseen_groups": "space groups never trained on",
    "unseen_types": "structure types never trained on",
    "held_out_crystal_system": "held-out materials, read as crystal systems",
    "unseen_groups_crystal_system": "space groups never trained on, read as crystal systems",
}


def extra_evaluations(
    lake_url: str,
    storage_options: dict | None,
    run_id: str,
    unseen_ids: list[str],
    patterns_per_material: int,
    unseen_type_ids: list[str] | None = None,
) -> dict[str, Evaluation]:
    """Score run ``run_id`` on its held-out materials, on ``unseen_ids`` (materials of space
    groups held out whole) and on ``unseen_type_ids`` (materials of structure types held out
    whole); a Laue-class run is scored at the crystal-system level too.

    The run's own held-out evaluation is recomputed (same patterns: the seeds are fixed) so its
    per-pattern calls are at hand for the crystal-system reading.
    """
    from train.runs.evaluate import evaluate_and_store

    scored = {"held_out": evaluate_and_store(lake_url, storage_options, run_id).evaluation}
    if unseen_ids:
        scored["unseen_groups"] = evaluate_and_store(
            lake_url, storage_options, run_id, list(unseen_ids), patterns_per_material
        ).evaluation
    if unseen_type_ids:
        scored["unseen_types"] = evaluate_and_store(
            lake_url, storage_options, run_id, list(unseen_type_ids), patterns_per_material
        ).evaluation
    if set(scored["held_out"].classes) <= set(LAUE_CLASS_SYSTEM):
        for name, evaluation in list(scored.items()):
            scored[f"{name}_crystal_system"] = crystal_system_view(evaluation)
    return scored


def crystal_system_view(evaluation: Evaluation) -> Evaluation:
    """A Laue-class evaluation read as crystal systems (a call in the right system counts)."""
    from train.runs.scores import regrouped

    return regrouped(evaluation, crystal_system_of_laue, list(CRYSTAL_SYSTEMS))


def write_extra_evaluations(
    package: Path,
    scored: dict[str, Evaluation],
    unseen_groups: list[int],
    unseen_types: tuple[str, ...] = (),
) -> None:
    """Add the evaluations other than the held-out one to the package: card fields, a card
    section and a confusion figure each."""
    from train.runs.package import accuracy_summary
    from train.runs.scores import confusion_png

    extra = {name: ev for name, ev in scored.items() if name != "held_out"}
    if not extra:
        return
    summaries = {name: accuracy_summary(ev.summary()) for name, ev in extra.items()}

    def change(card: dict) -> None:
        card["unseen_space_groups"] = list(unseen_groups)
        card["unseen_structure_types"] = list(unseen_types)
        card["extra_evaluations"] = summaries

    lines = ["", "## More evaluations", ""]
    if unseen_groups:
        lines += [f"Space groups never trained on: {', '.join(map(str, unseen_groups))}.", ""]
    if unseen_types:
        lines += [f"Structure types never trained on: {', '.join(unseen_types)}.", ""]
    for name, ev in extra.items():
        figure = f"confusion-{name.replace('_', '-')}.png"
        (package / figure).write_bytes(confusion_png(ev))
        block = summaries[name]
        interval = block["interval_over_materials"] or {}
        lines.append(
            f"- {TITLES.get(name, name)}: {ev.accuracy:.3f} over {block['n_materials']} "
            f"materials ({ev.n_patterns} patterns; 95% interval over materials "
            f"{interval.get('low', float('nan')):.3f}-{interval.get('high', float('nan')):.3f}); "
            f"confusion ![]({figure})"
        )
        for label, value in ev.per_class.items():
            lines.append(f"  - {label}: {value:.3f} ({ev.class_counts.get(label, 0)} patterns)")
    add_to_card(package, change, [*lines, ""])
