"""Load a finished run's network for inference, whatever kind of run it was.

Supervised runs store one ResNet (``model``); MCD runs store a generator and two heads, whose
softmax outputs are averaged. Either way :class:`LoadedRun` maps (N, 1, S, S) pre-processed
patterns to class probabilities (N, C), in the order of ``classes``, calibrated by the run's
``calibration.json`` when it has one, and carries the run's
:class:`~train.patterns.reading.PatternReading` so patterns are read the way it was trained.

A run is loaded from a lake (:func:`load_run`) or from a model package folder
(:func:`load_model`: a path, or the name of a package shipped in ``train/shipped_models/``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from train.errors import TrainingError, one_line
from train.models import build_classifier, build_mcd_networks
from train.patterns.errors import PatternError
from train.patterns.reading import PatternReading
from train.runs.beam_energy import measured_accuracies, trained_beam_energies
from train.runs.calibration import DEFAULT_THRESHOLD, Calibration
from train.runs.run import (
    CALIBRATION_FILE,
    CARD_FILE,
    CLASSES_FILE,
    CONFIG_FILE,
    MODEL_FILE,
    READING_FILE,
    Run,
)
from train.shipped import model_folder

RUN_KINDS = ("supervised", "mcd")


class ClassProbabilities(nn.Module):
    """A run's networks -> class probabilities: softmax of a classifier, or the mean of the
    two MCD heads' softmax outputs over a shared generator."""

    def __init__(self, networks: dict[str, nn.Module]) -> None:
        super().__init__()
        self.networks = nn.ModuleDict(networks)

    def forward(self, patterns: torch.Tensor) -> torch.Tensor:
        if "model" in self.networks:
            return torch.softmax(self.networks["model"](patterns), 1)
        features = self.networks["generator"](patterns)
        heads = [torch.softmax(self.networks[h](features), 1) for h in ("head1", "head2")]
        return (heads[0] + heads[1]) / 2


def probability_network(
    kind: str, arch: str, num_classes: int, state: dict[str, Any]
) -> ClassProbabilities:
    """The network of a run of ``kind`` with ``state`` loaded, in eval mode."""
    if kind == "mcd":
        networks = build_mcd_networks(num_classes, arch).modules()
    else:
        networks = {"model": build_classifier(num_classes, arch)}
    for name, module in networks.items():
        module.load_state_dict(state[name])
    return ClassProbabilities(networks).eval()


@dataclass
class LoadedRun:
    """A run ready for inference.

    Attributes
    ----------
    run_id
        The run's name.
    kind
        ``"supervised"`` or ``"mcd"``.
    classes
        Label values in output order.
    config
        The run's ``config.json`` (``config`` holds the training settings).
    reading
        How the run reads a pattern (pre-processing, detector, input size).
    model
        Module mapping (N, 1, S, S) patterns to raw probabilities (N, C), in eval mode.
    calibration
        The run's temperature and threshold (None: uncalibrated, ``T = 1`` and
        :data:`~train.runs.calibration.DEFAULT_THRESHOLD`).
    limits
        What a model package's card says it must not be used for (its ``limits`` section's
        ``use`` line), for ``predict`` to repeat; None when the card states no limits.
    beam_energies_kv
        The beam energies (kV) the model was trained on, from its card; None when unknown.
    beam_energy_accuracy
        Held-out accuracy by beam energy (kV) where the card records it measured.
    """

    run_id: str
    kind: str
    classes: list
    config: dict[str, Any]
    reading: PatternReading
    model: nn.Module
    calibration: Calibration | None = None
    limits: str | None = None
    beam_energies_kv: tuple[float, ...] | None = None
    beam_energy_accuracy: dict[float, float] | None = None

    @property
    def threshold(self) -> float:
        """Top probability at and above which a call is confident."""
        return self.calibration.threshold if self.calibration else DEFAULT_THRESHOLD

    @property
    def settings(self) -> dict[str, Any]:
        """The training settings (``SupervisedConfig`` or ``MCDConfig`` as a dict)."""
        return self.config["config"]

    @torch.no_grad()
    def raw_probabilities(self, patterns: torch.Tensor, chunk: int = 64) -> torch.Tensor:
        """The network's class probabilities (N, C) before calibration, in chunks on the CPU."""
        if len(patterns) == 0:
            return torch.zeros((0, len(self.classes)))
        return torch.cat([self.model(part) for part in torch.split(patterns, chunk)])

    def probabilities(self, patterns: torch.Tensor, chunk: int = 64) -> torch.Tensor:
        """Calibrated class probabilities (N, C): the run's temperature applied, if it has one
        (the most probable class never changes)."""
        raw = self.raw_probabilities(patterns, chunk)
        if self.calibration is None or len(raw) == 0:
            return raw
        return torch.from_numpy(self.calibration.apply(raw.numpy()))


def load_run(lake, run_id: str) -> LoadedRun:
    """Read a run's config, classes, reading settings and weights; rebuild its network.

    Raises
    ------
    TrainingError
        One line naming the run and the file at fault: a missing run, a file that is not valid
        JSON or lacks a field, an unreadable ``model.pt``, or weights that do not fit.
    """
    run = Run(lake, run_id).require()
    config = run.config
    classes = run.classes
    reading = run.reading()
    calibration = None
    if run.has(CALIBRATION_FILE):
        where = f"run {run_id!r}: {CALIBRATION_FILE}"
        calibration = Calibration.from_dict(run.get_json(CALIBRATION_FILE), where)
    return _loaded(
        run_id, f"run {run_id!r}", config, classes, reading, run.model_state(), calibration
    )


def load_model(name_or_path: str | Path) -> LoadedRun:
    """A model package: the folder at ``name_or_path``, else the shipped package of that name.

    Raises
    ------
    TrainingError
        One line naming the model and the file at fault (no such folder or shipped name, a
        missing or invalid file, weights that do not fit).
    """
    folder = model_folder(name_or_path)
    where = f"model {str(folder)!r}"
    config, classes, reading_data = (
        _package_json(folder, name) for name in (CONFIG_FILE, CLASSES_FILE, READING_FILE)
    )
    if not isinstance(config, dict):
        raise TrainingError(f"{where}: {CONFIG_FILE} is not a JSON object")
    if not isinstance(classes, list) or len(classes) < 2:
        raise TrainingError(f"{where}: {CLASSES_FILE} is not a list of two or more labels")
    try:
        reading = PatternReading.from_dict(reading_data, f"{where}: {READING_FILE}")
    except PatternError as exc:
        raise TrainingError(str(exc)) from None
    calibration = None
    if (folder / CALIBRATION_FILE).is_file():
        calibration = Calibration.from_dict(
            _package_json(folder, CALIBRATION_FILE), f"{where}: {CALIBRATION_FILE}"
        )
    try:
        state = torch.load(folder / MODEL_FILE, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TrainingError(f"{where}: lacks {MODEL_FILE}") from None
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        raise TrainingError(f"{where}: {MODEL_FILE} is unreadable ({one_line(exc)})") from None
    card = package_card(folder)
    return _loaded(
        folder.name, where, config, classes, reading, state, calibration, stated_limits(card),
        trained_beam_energies(card), measured_accuracies(card),
    )  # fmt: skip


def package_card(folder: Path) -> dict[str, Any]:
    """A package's ``card.json``; empty when missing or unreadable: the card is documentation,
    so a damaged one never blocks inference."""
    try:
        card = json.loads((folder / CARD_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return card if isinstance(card, dict) else {}


def stated_limits(card: dict[str, Any]) -> str | None:
    """The ``use`` line of a package card's ``limits`` section (see
    ``infra.app.card_sections``), None when the card has none."""
    limits = card.get("limits")
    use = limits.get("use") if isinstance(limits, dict) else None
    return str(use) if use else None


def _package_json(folder: Path, name: str) -> Any:
    """One JSON file of a model package; a :class:`TrainingError` when missing or invalid."""
    try:
        return json.loads((folder / name).read_text())
    except FileNotFoundError:
        raise TrainingError(f"model {str(folder)!r}: lacks {name}") from None
    except ValueError as exc:
        raise TrainingError(
            f"model {str(folder)!r}: {name} is not valid JSON ({one_line(exc)})"
        ) from None


def _loaded(
    run_id: str,
    where: str,
    config: dict[str, Any],
    classes: list,
    reading: PatternReading,
    state: Any,
    calibration: Calibration | None,
    limits: str | None = None,
    beam_energies_kv: tuple[float, ...] | None = None,
    beam_energy_accuracy: dict[float, float] | None = None,
) -> LoadedRun:
    """Rebuild the network of a run's files (``where`` names it in errors)."""
    kind, arch = _checked_config(where, config)
    if not isinstance(state, dict):
        raise TrainingError(f"{where}: {MODEL_FILE} holds no dict of state dicts")
    try:
        model = probability_network(kind, arch, len(classes), state)
    except TrainingError as exc:
        raise TrainingError(f"{where}: {CONFIG_FILE}: {exc}") from None
    except (KeyError, RuntimeError, TypeError, AttributeError) as exc:
        raise TrainingError(
            f"{where}: {MODEL_FILE} does not fit {CONFIG_FILE} and {CLASSES_FILE} "
            f"({one_line(exc, 200)})"
        ) from None
    return LoadedRun(
        run_id, kind, list(classes), config, reading, model, calibration, limits,
        beam_energies_kv, beam_energy_accuracy,
    )  # fmt: skip


def _checked_config(where: str, config: dict[str, Any]) -> tuple[str, str]:
    """``(kind, arch)`` of a run's ``config.json``; :class:`TrainingError` naming what lacks."""
    settings = config.get("config")
    if not isinstance(settings, dict):
        raise TrainingError(f"{where}: {CONFIG_FILE} lacks 'config'")
    for key, kind in (("arch", str), ("image_size", int)):
        if not isinstance(settings.get(key), kind):
            raise TrainingError(f"{where}: {CONFIG_FILE} lacks 'config.{key}'")
    kind = config.get("kind", "supervised")
    if kind not in RUN_KINDS:
        raise TrainingError(f"{where}: unknown run kind {kind!r} in {CONFIG_FILE}")
    return kind, settings["arch"]
