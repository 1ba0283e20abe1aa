"""Start a supervised network from a trained model package's backbone (transfer learning).

A model that has learnt to read Kikuchi bands (the shipped cubic model) is a better starting
point for another label than random weights: ``SupervisedConfig.init_from`` names a package
(a shipped name or a folder); its network's layers, all but the classification layer, are
copied into the new classifier, whose last layer starts fresh for the new classes. Checked on
the driver (the package exists, is a supervised run of the same architecture) so a bad name is
one line before Ray starts; loaded again in each worker.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from train.errors import TrainingError, one_line
from train.run_files import CONFIG_FILE, MODEL_FILE
from train.shipped import model_folder

HEAD_PREFIX = "fc."
"""State-dict keys of the classification layer, which is always new."""


def package_folder(name_or_path: str) -> Path:
    """The package folder ``init_from`` names (a folder, else a shipped package's name)."""
    try:
        return model_folder(name_or_path)
    except TrainingError as exc:
        raise TrainingError(f"training config init_from: {exc}") from None


def check_initial_weights(name_or_path: str, arch: str) -> Path:
    """The package folder, after checking it holds a supervised ``arch`` network.

    Raises
    ------
    TrainingError
        One line naming ``init_from``, the package and the reason.
    """
    folder = package_folder(name_or_path)
    where = f"training config init_from={name_or_path!r}"
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise TrainingError(f"{where}: {CONFIG_FILE} unreadable ({one_line(exc)})") from None
    kind = config.get("kind", "supervised") if isinstance(config, dict) else None
    settings = config.get("config", {}) if isinstance(config, dict) else {}
    if kind != "supervised":
        raise TrainingError(f"{where}: a {kind} run; only a supervised package can seed one")
    if settings.get("arch") != arch:
        raise TrainingError(
            f"{where}: its network is {settings.get('arch')!r}, this run's is {arch!r}"
        )
    if not (folder / MODEL_FILE).is_file():
        raise TrainingError(f"{where}: lacks {MODEL_FILE}")
    return folder


def backbone_state(name_or_path: str) -> dict[str, torch.Tensor]:
    """The package network's tensors without its classification layer, as float32."""
    folder = package_folder(name_or_path)
    try:
        stored: Any = torch.load(folder / MODEL_FILE, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        raise TrainingError(
            f"training config init_from={name_or_path!r}: {MODEL_FILE} unreadable ({one_line(exc)})"
        ) from None
    state = stored.get("model") if isinstance(stored, dict) else None
    if not isinstance(state, dict):
        raise TrainingError(
            f"training config init_from={name_or_path!r}: {MODEL_FILE} holds no 'model' network"
        )
    return {
        key: value.float() if value.is_floating_point() else value
        for key, value in state.items()
        if not key.startswith(HEAD_PREFIX)
    }


def load_backbone(model: nn.Module, name_or_path: str) -> int:
    """Copy the package's backbone into ``model`` (its ``fc`` untouched); the tensors copied.

    Raises
    ------
    TrainingError
        When a tensor of the backbone is missing, extra or of another shape.
    """
    state = backbone_state(name_or_path)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise TrainingError(
            f"training config init_from={name_or_path!r}: its weights do not fit this network "
            f"({one_line(exc, 200)})"
        ) from None
    missing = [key for key in missing if not key.startswith(HEAD_PREFIX)]
    if missing or unexpected:
        raise TrainingError(
            f"training config init_from={name_or_path!r}: its weights do not fit this network "
            f"(missing {len(missing)}, unexpected {len(unexpected)} tensors)"
        )
    return len(state)
