"""A file's predictions and what predict writes of them: CSV, phase map, summary line.

Per pattern the CSV holds the call (label value and its symbol: the Hermann-Mauguin symbol for
space-group labels), its calibrated probability, the verdict (``confident`` when the
probability reaches the run's threshold, else ``uncertain``), the image quality Q (Krieger
Lassen, as kikuchipy computes it: higher is sharper bands, about 0 for noise) and every class
probability. A 2-D scan also gets a phase map PNG.

Output names: ``<stem>.csv`` and ``<stem>_phase_map.png`` for an input named ``<stem>.<ext>``;
when either name is taken (an earlier file of the same call, e.g. two ``patterns.h5`` from
different folders, or an earlier run of predict), the first free suffix ``-2``, ``-3``... is
added to both. An existing file is never overwritten.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from train.errors import TrainingError
from train.runs.calibration import DEFAULT_THRESHOLD, verdicts
from train.runs.scope_gate import GateResult
from train.targets import OUTSIDE, class_symbol


@dataclass
class Prediction:
    """Predictions of one run for one pattern file.

    Attributes
    ----------
    run_id, source
        The run (or model package) used and the file read.
    nav_shape
        Scan shape (rows, cols) or ``(N,)``.
    classes
        Label values in probability-column order.
    probabilities
        float32 (N, C), calibrated when the run has a calibration.
    geometry_note
        Which recording geometry was used to read the patterns.
    label
        The structure attribute the run predicts (for symbols); empty if unknown.
    threshold
        Top probability at and above which a call is confident.
    calibrated
        Whether ``probabilities`` and ``threshold`` come from a calibration; if not, the
        threshold is :data:`~train.runs.calibration.DEFAULT_THRESHOLD`.
    quality
        float32 (N,) image quality Q per pattern, or None when not computed.
    gate
        A Laue-class model's reading of the same patterns (``predict --gate``), or None:
        patterns it puts outside the classes are uncertain.
    """

    run_id: str
    source: str
    nav_shape: tuple[int, ...]
    classes: list
    probabilities: np.ndarray = field(repr=False)
    geometry_note: str = ""
    label: str = ""
    threshold: float = DEFAULT_THRESHOLD
    calibrated: bool = False
    quality: np.ndarray | None = field(default=None, repr=False)
    gate: GateResult | None = field(default=None, repr=False)

    @property
    def predicted(self) -> list:
        """Most probable label per pattern."""
        return [self.classes[i] for i in self.probabilities.argmax(1)]

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the call per pattern, float32 (N,)."""
        return self.probabilities.max(1)

    @property
    def verdict(self) -> list[str]:
        """``"confident"``, ``"uncertain"`` or ``"outside"`` per pattern: top probability vs
        ``threshold``, image quality vs :data:`~train.runs.calibration.MIN_IMAGE_QUALITY` when
        known, the gate's in-scope probability when there is a gate, and ``"outside"`` for a
        confident call of a learnt ``outside`` class."""
        outside = None if self.gate is None else self.gate.outside
        return verdicts(self.probabilities, self.threshold, self.quality, outside, self.classes)

    @property
    def symbols(self) -> list[str]:
        """How each class reads (``"Fm-3m"`` for space group 225), in column order."""
        return [class_symbol(self.label, c) for c in self.classes]

    @property
    def is_map(self) -> bool:
        """Whether the file is a 2-D scan (a phase map can be drawn)."""
        return len(self.nav_shape) == 2


def summary_line(prediction: Prediction) -> str:
    """One line per file: patterns, confident calls per class, those outside the classes (a
    model with a learnt ``outside`` class), uncertain ones, medians."""
    total = len(prediction.probabilities)
    said = np.array(prediction.verdict)
    confident = said == "confident"
    symbols = prediction.symbols
    calls = Counter(symbols[i] for i in prediction.probabilities.argmax(1)[confident])
    shown = ", ".join(f"{s} {n}" for s, n in calls.most_common()) or "none"
    how = "calibrated" if prediction.calibrated else "uncalibrated: default"
    outside = (
        f"outside the classes {int((said == 'outside').sum())}, "
        if OUTSIDE in prediction.classes
        else ""
    )
    text = (
        f"{prediction.source}: {total} patterns; confident {int(confident.sum())} ({shown}), "
        f"{outside}uncertain {int((said == 'uncertain').sum())} "
        f"(threshold {prediction.threshold:.3f}, {how}); "
        f"median probability {float(np.median(prediction.confidence)) if total else 0:.3f}"
    )
    if prediction.quality is not None and total:
        text += f", median image quality {float(np.median(prediction.quality)):.3f}"
    if total:
        text += f"; mean over the file {file_mean(prediction)}"
    if prediction.gate is not None and total:
        outside = prediction.gate.outside
        calls = Counter(c for c, out in zip(prediction.gate.calls, outside, strict=True) if out)
        shown = ", ".join(f"{c} {n}" for c, n in calls.most_common())
        text += f"; outside the classes by gate {prediction.gate.gate} {int(outside.sum())}" + (
            f" ({shown})" if shown else ""
        )
    return text


def file_mean(prediction: Prediction, shown: int = 2) -> str:
    """The ``shown`` classes of highest mean probability over the file's patterns, e.g.
    ``Fm-3m 0.40, Im-3m 0.29``: for a one-phase sample, the scan's evidence pooled (a
    description, not a verdict: patterns of one grain are not independent draws)."""
    mean = prediction.probabilities.mean(0)
    order = np.argsort(-mean, kind="stable")[:shown]
    return ", ".join(f"{prediction.symbols[i]} {mean[i]:.2f}" for i in order)


def out_folder(out_dir: str | Path) -> Path:
    """``out_dir`` as a path, checked to be (or to be creatable as) a folder."""
    out = Path(out_dir)
    for folder in (out, *out.parents):
        if folder.exists() and not folder.is_dir():
            raise TrainingError(f"--out {out}: {folder} is a file, not a folder")
        if folder.exists():
            break
    return out


def predictions_csv(prediction: Prediction) -> bytes:
    """CSV bytes: ``index, row, col, predicted, symbol, probability, verdict, image_quality,
    p_<label>...`` per pattern (``image_quality`` empty when not computed), then with a gate
    ``in_scope_probability, gate_call``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    gate = prediction.gate
    writer.writerow(
        ["index", "row", "col", "predicted", "symbol", "probability", "verdict", "image_quality"]
        + [f"p_{c}" for c in prediction.classes]
        + ([] if gate is None else ["in_scope_probability", "gate_call"])
    )
    cols = prediction.nav_shape[1] if prediction.is_map else 1
    symbols, quality = prediction.symbols, prediction.quality
    for i, (probs, verdict) in enumerate(
        zip(prediction.probabilities, prediction.verdict, strict=True)
    ):
        row, col = divmod(i, cols) if prediction.is_map else (i, 0)
        best = int(probs.argmax())
        q = "" if quality is None else f"{quality[i]:.4f}"
        writer.writerow(
            [i, row, col, prediction.classes[best], symbols[best], f"{probs[best]:.6f}", verdict, q]
            + [f"{p:.6f}" for p in probs]
            + ([] if gate is None else [f"{gate.in_scope[i]:.6f}", gate.calls[i]])
        )
    return buffer.getvalue().encode()


def phase_map_png(prediction: Prediction) -> bytes:
    """Phase map PNG of a 2-D scan: left, the confident calls coloured by class symbol with
    uncertain pixels grey and crossed; right, the calibrated probability of each call. Axes
    in scan steps."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import colors
    from matplotlib import pyplot as plt
    from matplotlib.patches import Patch

    rows, cols = prediction.nav_shape
    index = prediction.probabilities.argmax(1).reshape(rows, cols)
    confidence = prediction.confidence.reshape(rows, cols)
    uncertain = (np.array(prediction.verdict) == "uncertain").reshape(rows, cols)
    palette = plt.get_cmap("tab10" if len(prediction.classes) <= 10 else "tab20")
    rgb = np.array([colors.to_rgb(palette(i % palette.N)) for i in range(len(prediction.classes))])
    image = rgb[index]
    image[uncertain] = 0.8
    width = 2.5 + min(cols, 400) / 40  # inches per panel
    height = min(12.0, max(2.8, 1.4 + width * rows / cols))
    fig, (phases, probability) = plt.subplots(1, 2, figsize=(2 * width + 3.5, height))
    phases.imshow(image, interpolation="nearest")
    if uncertain.any() and rows * cols <= 4096:
        ys, xs = np.nonzero(uncertain)
        phases.scatter(xs, ys, marker="x", c="k", s=max(4, 2000 / max(rows, cols) ** 2), lw=0.6)
    shown = probability.imshow(confidence, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(shown, ax=probability, fraction=0.046, label="probability of the call")
    for ax in (phases, probability):
        ax.set_xlabel("column (scan steps)")
        ax.set_ylabel("row (scan steps)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.yaxis.get_major_locator().set_params(integer=True)
    symbols = prediction.symbols
    present = sorted(set(index[~uncertain].ravel().tolist()))
    handles = [Patch(color=rgb[i], label=symbols[i]) for i in present]
    handles.append(
        Patch(
            color=(0.8, 0.8, 0.8),
            label=f"uncertain (p < {prediction.threshold:.2f}, no bands"
            + (", outside the classes)" if prediction.gate is not None else ")"),
        )
    )
    phases.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    how = "calibrated" if prediction.calibrated else "uncalibrated"
    phases.set_title(f"{Path(prediction.source).name}: {prediction.run_id}", fontsize=9)
    probability.set_title(f"confidence ({how})", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def _free_stem(out: Path, stem: str, names: tuple[str, ...]) -> str:
    """``stem``, else ``stem-2``, ``stem-3``...: the first for which no output name exists."""
    candidate, n = stem, 1
    while any((out / name.format(candidate)).exists() for name in names):
        n += 1
        candidate = f"{stem}-{n}"
    return candidate


def write_prediction(prediction: Prediction, out_dir: str | Path) -> list[Path]:
    """Write ``<stem>.csv`` and, for a scan, ``<stem>_phase_map.png`` into ``out_dir`` (a free
    suffix ``-2``, ``-3``... when a name is taken; nothing is overwritten)."""
    out = out_folder(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainingError(
            f"--out {out}: cannot create the folder ({exc.strerror or exc})"
        ) from None
    names = ("{}.csv", "{}_phase_map.png") if prediction.is_map else ("{}.csv",)
    stem = _free_stem(out, Path(prediction.source).stem or "patterns", names)
    contents = [predictions_csv(prediction)]
    if prediction.is_map:
        contents.append(phase_map_png(prediction))
    written = []
    for name, data in zip(names, contents, strict=True):
        path = out / name.format(stem)
        try:
            with open(path, "xb") as handle:  # exclusive: never overwrite
                handle.write(data)
        except FileExistsError:
            raise TrainingError(
                f"--out {out}: {path.name} appeared while writing; run again"
            ) from None
        written.append(path)
    return written
