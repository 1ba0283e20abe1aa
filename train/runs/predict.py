"""Prediction: label experimental patterns with a trained run.

Patterns are read like MCD targets (kikuchipy formats or an image folder), pre-processed with the
pre-processing and input size the run was trained with (its ``reading.json``). For each file: a CSV with the predicted label and every class probability per pattern, and
for a 2-D scan a phase map PNG.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from train.errors import TrainingError
from train.patterns.errors import PatternError
from train.patterns.experimental import prepare_patterns, read_patterns
from train.runs.inference import LoadedRun, load_run
from train.runs.run import open_lake


@dataclass
class Prediction:
    """Predictions of one run for one pattern file.

    Attributes
    ----------
    run_id, source
        The run used and the file read.
    nav_shape
        Scan shape (rows, cols) or ``(N,)``.
    classes
        Label values in probability-column order.
    probabilities
        float32 (N, C).
    """

    run_id: str
    source: str
    nav_shape: tuple[int, ...]
    classes: list
    probabilities: np.ndarray = field(repr=False)

    @property
    def predicted(self) -> list:
        """Most probable label per pattern."""
        return [self.classes[i] for i in self.probabilities.argmax(1)]

    @property
    def is_map(self) -> bool:
        """Whether the file is a 2-D scan (a phase map can be drawn)."""
        return len(self.nav_shape) == 2


def predict_file(loaded: LoadedRun, path: str | Path) -> Prediction:
    """Predict every pattern of one file with a loaded run, read the way it was trained (its
    pre-processing and input size, from the run's ``reading.json``)."""
    pattern_set = read_patterns(path)
    reading = loaded.reading
    prepared = prepare_patterns(pattern_set.patterns, reading.preprocess, reading.image_size)
    probabilities = loaded.probabilities(prepared).numpy().astype(np.float32)
    return Prediction(
        loaded.run_id, str(path), pattern_set.nav_shape, loaded.classes, probabilities
    )


def predict_files(
    lake_url: str, storage_options: dict | None, run_id: str, files: list[str]
) -> list[Prediction]:
    """Load run ``run_id`` from the lake and predict each file (the first bad file raises)."""
    loaded = load_run(open_lake(lake_url, storage_options), run_id)
    return [predict_file(loaded, path) for path in files]


def iter_predictions(
    lake_url: str, storage_options: dict | None, run_id: str, files: list[str]
) -> Iterator[Prediction | TrainingError | PatternError]:
    """Load run ``run_id`` and yield each file's :class:`Prediction` as soon as it is done.

    A file that cannot be predicted yields its :class:`TrainingError` instead, so the caller
    keeps (and writes) the results of the other files.
    """
    loaded = load_run(open_lake(lake_url, storage_options), run_id)
    for path in files:
        try:
            yield predict_file(loaded, path)
        except (TrainingError, PatternError) as exc:
            yield exc


def check_inputs(files: list[str], out_dir: str | Path) -> None:
    """Raise :class:`TrainingError` before any work when an input is missing or ``out_dir``
    cannot be a folder (an existing file, or under one)."""
    missing = [path for path in files if not Path(path).exists()]
    if missing:
        raise TrainingError(f"patterns {missing[0]}: no such file or folder")
    _out_folder(out_dir)


def _out_folder(out_dir: str | Path) -> Path:
    """``out_dir`` as a path, checked to be (or to be creatable as) a folder."""
    out = Path(out_dir)
    for folder in (out, *out.parents):
        if folder.exists() and not folder.is_dir():
            raise TrainingError(f"--out {out}: {folder} is a file, not a folder")
        if folder.exists():
            break
    return out


def predictions_csv(prediction: Prediction) -> bytes:
    """CSV bytes: ``index, row, col, predicted, p_<label>...`` per pattern."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["index", "row", "col", "predicted", *[f"p_{c}" for c in prediction.classes]])
    cols = prediction.nav_shape[1] if prediction.is_map else 1
    for i, (label, probs) in enumerate(
        zip(prediction.predicted, prediction.probabilities, strict=True)
    ):
        row, col = divmod(i, cols) if prediction.is_map else (i, 0)
        writer.writerow([i, row, col, label, *[f"{p:.6f}" for p in probs]])
    return buffer.getvalue().encode()


def phase_map_png(prediction: Prediction) -> bytes:
    """Phase map PNG of a 2-D scan: colour = predicted label, brightness = its probability."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import colors
    from matplotlib import pyplot as plt
    from matplotlib.patches import Patch

    rows, cols = prediction.nav_shape
    index = prediction.probabilities.argmax(1).reshape(rows, cols)
    confidence = prediction.probabilities.max(1).reshape(rows, cols)
    palette = plt.get_cmap("tab10" if len(prediction.classes) <= 10 else "tab20")
    rgb = np.array([colors.to_rgb(palette(i % palette.N)) for i in range(len(prediction.classes))])
    image = rgb[index] * (0.35 + 0.65 * confidence[..., None])
    fig, ax = plt.subplots(figsize=(4 + cols / 40, 3 + rows / 40))
    ax.imshow(image, interpolation="nearest")
    ax.set_title(f"{Path(prediction.source).name}: {prediction.run_id}")
    ax.set_xticks([])
    ax.set_yticks([])
    present = sorted(set(index.ravel().tolist()))
    handles = [Patch(color=rgb[i], label=str(prediction.classes[i])) for i in present]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def write_prediction(prediction: Prediction, out_dir: str | Path) -> list[Path]:
    """Write ``<stem>.csv`` and, for a scan, ``<stem>_phase_map.png`` into ``out_dir``."""
    out = _out_folder(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainingError(
            f"--out {out}: cannot create the folder ({exc.strerror or exc})"
        ) from None
    stem = Path(prediction.source).stem or "patterns"
    written = [out / f"{stem}.csv"]
    written[0].write_bytes(predictions_csv(prediction))
    if prediction.is_map:
        written.append(out / f"{stem}_phase_map.png")
        written[1].write_bytes(phase_map_png(prediction))
    return written
