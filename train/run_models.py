"""Load a finished run's network for inference, whatever kind of run it was.

Supervised runs store one ResNet (``model``); MCD runs store a generator and two heads, whose
softmax outputs are averaged. Either way :class:`LoadedRun` maps (N, 1, S, S) pre-processed
patterns to class probabilities (N, C), in the order of ``classes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from train.models import build_classifier, build_mcd_networks
from train.runs import CLASSES_FILE, CONFIG_FILE, MODEL_FILE, get_json, get_model, require_run
from train.training_errors import TrainingError, one_line


class _MCDProbabilities(nn.Module):
    """Generator + two heads -> mean of the heads' softmax outputs."""

    def __init__(self, generator: nn.Module, head1: nn.Module, head2: nn.Module) -> None:
        super().__init__()
        self.generator, self.head1, self.head2 = generator, head1, head2

    def forward(self, patterns: torch.Tensor) -> torch.Tensor:
        features = self.generator(patterns)
        return (torch.softmax(self.head1(features), 1) + torch.softmax(self.head2(features), 1)) / 2


class _SoftmaxClassifier(nn.Module):
    """A classifier followed by softmax."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, patterns: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(patterns), 1)


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
    model
        Module mapping (N, 1, S, S) patterns to probabilities (N, C), in eval mode.
    """

    run_id: str
    kind: str
    classes: list
    config: dict[str, Any]
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
    """Read a run's config, classes and weights and rebuild its network (CPU, eval mode).

    Raises
    ------
    TrainingError
        One line naming the run and the file at fault: a missing run, a file that is not valid
        JSON or lacks a field, an unreadable ``model.pt``, or weights that do not fit.
    """
    require_run(lake, run_id)
    config = get_json(lake, run_id, CONFIG_FILE)
    kind, arch = _checked_config(run_id, config)
    classes = get_json(lake, run_id, CLASSES_FILE)
    if not isinstance(classes, list) or len(classes) < 2:
        raise TrainingError(f"run {run_id!r}: {CLASSES_FILE} is not a list of two or more labels")
    state = get_model(lake, run_id)
    try:
        model = _build(kind, arch, len(classes), state)
    except TrainingError as exc:
        raise TrainingError(f"run {run_id!r}: {CONFIG_FILE}: {exc}") from None
    except (KeyError, RuntimeError, TypeError, AttributeError) as exc:
        raise TrainingError(
            f"run {run_id!r}: {MODEL_FILE} does not fit {CONFIG_FILE} and {CLASSES_FILE} "
            f"({one_line(exc, 200)})"
        ) from None
    return LoadedRun(run_id, kind, list(classes), config, model.eval())


def _checked_config(run_id: str, config: Any) -> tuple[str, str]:
    """``(kind, arch)`` of a run's ``config.json``; :class:`TrainingError` naming what lacks."""
    if not isinstance(config, dict):
        raise TrainingError(f"run {run_id!r}: {CONFIG_FILE} is not a JSON object")
    settings = config.get("config")
    if not isinstance(settings, dict):
        raise TrainingError(f"run {run_id!r}: {CONFIG_FILE} lacks 'config'")
    for key, kind in (("arch", str), ("image_size", int)):
        if not isinstance(settings.get(key), kind):
            raise TrainingError(f"run {run_id!r}: {CONFIG_FILE} lacks 'config.{key}'")
    kind = config.get("kind", "supervised")
    if kind not in ("supervised", "mcd"):
        raise TrainingError(f"run {run_id!r}: unknown run kind {kind!r} in {CONFIG_FILE}")
    return kind, settings["arch"]


def _build(kind: str, arch: str, num_classes: int, state: dict[str, Any]) -> nn.Module:
    """The network of a run of ``kind`` with ``state`` loaded (probabilities out)."""
    if kind == "mcd":
        nets = build_mcd_networks(num_classes, arch)
        for name, module in nets.modules().items():
            module.load_state_dict(state[name])
        return _MCDProbabilities(nets.generator, nets.head1, nets.head2)
    classifier = build_classifier(num_classes, arch)
    classifier.load_state_dict(state["model"])
    return _SoftmaxClassifier(classifier)
