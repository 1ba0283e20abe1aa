"""Where model packages live: a folder, or a name shipped in ``train/shipped_models/``.

Both reading a package for inference (``train.runs.inference``) and starting a run from one
(``train.initial_weights``) resolve names here, so a name means the same package everywhere.
"""

from __future__ import annotations

from pathlib import Path

from train.errors import TrainingError
from train.run_files import MODEL_FILE

SHIPPED_MODELS = Path(__file__).resolve().parent / "shipped_models"
"""Model packages shipped with ebsdlake (``train/shipped_models/<NAME>/``), used by name."""


def shipped_model_names() -> list[str]:
    """Names of the model packages shipped in ``train/shipped_models/``."""
    if not SHIPPED_MODELS.is_dir():
        return []
    return sorted(p.name for p in SHIPPED_MODELS.iterdir() if (p / MODEL_FILE).is_file())


def model_folder(name_or_path: str | Path) -> Path:
    """The package folder ``name_or_path`` names: a folder, else a shipped package's name; a
    one-line :class:`TrainingError` listing the shipped names when it is neither."""
    folder = Path(name_or_path)
    if folder.is_dir():
        return folder
    shipped = SHIPPED_MODELS / str(name_or_path)
    if "/" in str(name_or_path) or not shipped.is_dir():
        names = ", ".join(shipped_model_names()) or "none"
        raise TrainingError(
            f"model {str(name_or_path)!r}: no such model folder and no shipped model of that "
            f"name (shipped: {names})"
        )
    return shipped
