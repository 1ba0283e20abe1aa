"""The ``[train]`` config section's keys and defaults, read off the run settings dataclass.

A default is written once: on :class:`~train.supervised.SupervisedConfig` (the paper's
supervised settings) and :data:`PAPER_FOLDS`. The application registers this section with
``infra.config.register_section("train", *config_section_defaults())`` before it loads the
configuration (infra's runtime layer does not import the stages).
"""

from __future__ import annotations

from typing import Any

from train.supervised import SupervisedConfig

PAPER_FOLDS = 5
"""Cross-validation folds of the paper's supervised protocol."""

PAPER_HOLDOUT_FRACTION = 0.2
"""Share of each label's materials held out when no test materials are named."""

#: ``[train]`` key -> ``SupervisedConfig`` field, in the section's order.
CONFIG_KEYS = {
    "label": "label",
    "model": "arch",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "momentum": "momentum",
    "lr_step_epochs": "lr_step_epochs",
    "lr_gamma": "lr_gamma",
    "lr_schedule": "lr_schedule",
    "image_size": "image_size",
    "num_workers": "num_workers",
    "use_gpu": "use_gpu",
}


OPTIONAL_KEYS = {"cpu_threads": int, "init_from": str}
"""``[train]`` keys with no default: ``cpu_threads`` unset means each worker's Ray CPUs;
``init_from`` unset means random initialisation."""


def config_section_defaults() -> tuple[dict[str, Any], dict[str, type]]:
    """``(defaults, optional)`` of the ``[train]`` section."""
    settings = SupervisedConfig()
    defaults = {key: getattr(settings, field) for key, field in CONFIG_KEYS.items()}
    defaults["folds"] = PAPER_FOLDS
    return defaults, dict(OPTIONAL_KEYS)
