"""Load a finished run's network for inference, whatever kind of run it was.

Supervised runs store one ResNet (``model``); MCD runs store a generator and two heads, whose
softmax outputs are averaged. Either way :class:`LoadedRun` maps (N, 1, S, S) pre-processed
patterns to class probabilities (N, C), in the order of ``classes``, and carries the run's
:class:`~train.patterns.reading.PatternReading` so patterns are read the way it was trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from train.errors import TrainingError, one_line
from train.models import build_classifier, build_mcd_networks
from train.patterns.reading import PatternReading
from train.runs.run import CLASSES_FILE, CONFIG_FILE, MODEL_FILE, Run

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
        Module mapping (N, 1, S, S) patterns to probabilities (N, C), in eval mode.
    """

    run_id: str
    kind: str
    classes: list
    config: dict[str, Any]
    reading: PatternReading
    model: nn.Module

    @property
    def settings(self) -> dict[str, Any]:
        """The training settings (``SupervisedConfig`` or ``MCDConfig`` as a dict)."""
        return self.config["config"]

    @torch.no_grad()
    def probabilities(self, patterns: torch.Tensor, chunk: int = 64) -> torch.Tensor:
        """Class probabilities (N, C) of prepared patterns, computed in chunks on the CPU."""
        if len(patterns) == 0:
            return torch.zeros((0, len(self.classes)))
        return torch.cat([self.model(part) for part in torch.split(patterns, chunk)])


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
    kind, arch = _checked_config(run_id, config)
    classes = run.classes
    reading = run.reading()
    state = run.model_state()
    try:
        model = probability_network(kind, arch, len(classes), state)
    except TrainingError as exc:
        raise TrainingError(f"run {run_id!r}: {CONFIG_FILE}: {exc}") from None
    except (KeyError, RuntimeError, TypeError, AttributeError) as exc:
        raise TrainingError(
            f"run {run_id!r}: {MODEL_FILE} does not fit {CONFIG_FILE} and {CLASSES_FILE} "
            f"({one_line(exc, 200)})"
        ) from None
    return LoadedRun(run_id, kind, list(classes), config, reading, model)


def _checked_config(run_id: str, config: dict[str, Any]) -> tuple[str, str]:
    """``(kind, arch)`` of a run's ``config.json``; :class:`TrainingError` naming what lacks."""
    settings = config.get("config")
    if not isinstance(settings, dict):
        raise TrainingError(f"run {run_id!r}: {CONFIG_FILE} lacks 'config'")
    for key, kind in (("arch", str), ("image_size", int)):
        if not isinstance(settings.get(key), kind):
            raise TrainingError(f"run {run_id!r}: {CONFIG_FILE} lacks 'config.{key}'")
    kind = config.get("kind", "supervised")
    if kind not in RUN_KINDS:
        raise TrainingError(f"run {run_id!r}: unknown run kind {kind!r} in {CONFIG_FILE}")
    return kind, settings["arch"]
