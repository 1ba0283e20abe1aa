"""Figures of projected patterns: a grid of several materials at random orientations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from train.patterns.detector import Detector
from train.patterns.errors import PatternError
from train.patterns.preprocess import PreprocessConfig
from train.patterns.stream import PatternStream, StreamConfig


def pattern_grid(
    lake_url: str,
    storage_options: dict[str, Any] | None,
    material_ids: list[str],
    n_patterns: int,
    out_png: str | Path,
    seed: int = 0,
    detector: Detector | None = None,
) -> Path:
    """Save a PNG grid: one row per material, ``n_patterns`` random orientations each.

    Patterns use the paper's detector (or ``detector``), Monte Carlo energy weighting and the
    default background correction, so they look like the training input.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    PatternError
        ``n_patterns`` below 1 (``--patterns``).
    StreamError
        A material without a complete default master, or one whose master cannot be read
        (named, with a hint to run ``ebsdlake lake verify``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if isinstance(n_patterns, bool) or int(n_patterns) < 1:
        raise PatternError(f"--patterns {n_patterns}: must be >= 1 (patterns per material)")
    det = detector or Detector.paper(shape=(128, 128))
    n_cols = int(n_patterns)
    rows = []
    for mid in material_ids:
        cfg = StreamConfig(
            label="formula",
            detector=det,
            image_size=det.shape[0],
            batch_size=n_cols,
            seed=seed,
            balance=False,
            preprocess=PreprocessConfig(),
            prefetch=0,
            scheduler="sync",
        )
        stream = PatternStream(lake_url, storage_options, [mid], cfg)
        patterns, _, _ = next(iter(stream.batches(epoch=0, steps=1)))
        rows.append((mid, stream.labels[0], patterns[:, 0].cpu().numpy()))
    fig, axes = plt.subplots(
        len(rows), n_cols, figsize=(1.6 * n_cols, 1.7 * len(rows)), squeeze=False
    )
    for r, (mid, formula, pats) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.imshow(np.asarray(pats[c]), cmap="gray")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(f"{mid}\n{formula}", fontsize=7)
    fig.suptitle(f"{len(rows)} materials x {n_cols} random orientations", fontsize=9)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
