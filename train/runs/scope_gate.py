"""A second model that says whether a pattern is inside a model's classes at all.

A classifier trained on five cubic space groups has no way to say "none of these": shown a
hexagonal pattern it picks the nearest cubic class, often confidently. A Laue-class model
trained on crystals of every system (``systems-lab``) can: the probability it gives the Laue
classes the cubic model's classes belong to (m-3m for the paper's five groups) is the chance the
pattern is in scope. ``predict --gate NAME`` computes it per pattern, and a call whose pattern
is out of scope (the gate finds one other Laue class more likely than all of the model's
together) is uncertain whatever its own probability. The rule compares probabilities instead
of using a fixed cut, so a gate whose calibration flattens its probabilities (T > 1) still
flags only what it actually calls outside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lake.laue_classes import LAUE_CLASS_SYSTEM, laue_class, laue_class_of_space_group
from train.errors import TrainingError


@dataclass
class GateResult:
    """The gate's reading of one file's patterns.

    Attributes
    ----------
    gate
        The gate model's name (package or run id).
    accepted
        The gate's classes (Laue classes) counted as inside the model's classes.
    in_scope
        float32 (N,): the gate's probability of the accepted classes, per pattern.
    best_outside
        float32 (N,): the gate's largest probability of one class outside them.
    calls
        The gate's own most probable class per pattern.
    """

    gate: str
    accepted: tuple[str, ...]
    in_scope: np.ndarray = field(repr=False)
    best_outside: np.ndarray = field(repr=False)
    calls: list[str] = field(default_factory=list)

    @property
    def outside(self) -> np.ndarray:
        """bool (N,): patterns the gate puts outside the model's classes (one other class
        more probable than the accepted ones together)."""
        return self.best_outside > self.in_scope


def laue_classes_of(label: str, classes: list) -> set[str]:
    """The Laue classes a model's label values belong to (space groups, point groups, Laue
    classes or crystal systems; a scoped label's ``outside`` class has none); a label with no
    Laue class (Bravais lattice) is refused."""
    from train.targets import OUTSIDE, label_scope

    stem = label_scope(label)[0].removeprefix("disordered_")
    classes = [value for value in classes if value != OUTSIDE]
    if "spacegroup" in stem:
        return {laue_class_of_space_group(int(value)) for value in classes}
    if stem == "point_group":
        return {laue_class(str(value)) for value in classes}
    if stem == "laue_class":
        return {str(value) for value in classes}
    if stem == "crystal_system":
        return {laue for laue, system in LAUE_CLASS_SYSTEM.items() if system in set(classes)}
    raise TrainingError(f"--gate: a model with label {label!r} has no Laue classes to gate")


def accepted_classes(model, gate) -> tuple[str, ...]:
    """The gate's classes that are inside ``model``'s classes (both loaded runs or packages).

    Raises
    ------
    TrainingError
        One line: the gate does not predict Laue classes, or covers none of the model's.
    """
    gate_label = str(gate.reading.label).removeprefix("disordered_")
    if gate_label != "laue_class":
        raise TrainingError(
            f"--gate {gate.run_id}: predicts {gate.reading.label!r}, not Laue classes "
            "(use a Laue-class model such as systems-lab)"
        )
    wanted = laue_classes_of(model.reading.label, list(model.classes))
    accepted = tuple(str(c) for c in gate.classes if str(c) in wanted)
    if not accepted:
        raise TrainingError(
            f"--gate {gate.run_id}: none of its classes is a Laue class of {model.run_id} "
            f"({', '.join(sorted(wanted))})"
        )
    return accepted


@dataclass
class ScopeGate:
    """A Laue-class model gating another model's calls.

    Attributes
    ----------
    model
        The gate (a loaded run or package predicting Laue classes).
    accepted
        Its classes inside the gated model's classes (:func:`accepted_classes`).
    """

    model: Any
    accepted: tuple[str, ...]

    @classmethod
    def for_model(cls, gated, gate) -> ScopeGate:
        """The gate ``gate`` for model ``gated`` (checked: see :func:`accepted_classes`)."""
        return cls(gate, accepted_classes(gated, gate))

    def read(self, patterns: np.ndarray, geometry) -> GateResult:
        """The gate's reading of raw ``patterns`` (..., H, W) recorded with ``geometry``,
        prepared the gate's own way (its detector, input size and pre-processing)."""
        from train.patterns.network_input import network_input

        prepared = network_input(patterns, geometry, self.model.reading)
        probabilities = self.model.probabilities(prepared).numpy().astype(np.float32)
        columns = [i for i, c in enumerate(self.model.classes) if str(c) in self.accepted]
        others = [i for i in range(len(self.model.classes)) if i not in columns]
        best_outside = (
            probabilities[:, others].max(1) if others else np.zeros(len(probabilities), np.float32)
        )
        return GateResult(
            gate=self.model.run_id,
            accepted=self.accepted,
            in_scope=probabilities[:, columns].sum(1),
            best_outside=best_outside,
            calls=[str(self.model.classes[i]) for i in probabilities.argmax(1)],
        )
