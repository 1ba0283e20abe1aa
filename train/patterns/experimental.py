"""Experimental patterns: reading, image quality selection, and the shared pre-processing.

Patterns are read through kikuchipy (every EBSD format it supports: h5ebsd, NORDIF, EMsoft,
Oxford...) or from a folder of images. They go through ``train.patterns.preprocess.preprocess``,
the same function the stream applies to simulated patterns, then are resized to the network
input. The MCD target set keeps the top-N patterns per phase by image quality (Krieger Lassen's
Q, via kikuchipy), as Yan et al. 2025 kept the 100 best per phase.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from train.patterns.errors import PatternError, one_line

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
MIN_PATTERN_PX = 16
"""Smallest pattern side accepted (smaller ones carry no usable Kikuchi bands)."""
_log = logging.getLogger(__name__)


@dataclass
class PatternSet:
    """Patterns read from one file or folder.

    Attributes
    ----------
    patterns
        float32 (N, H, W) raw intensities.
    nav_shape
        Scan shape (rows, cols) when the file is a map, else ``(N,)``.
    source
        The path read.
    """

    patterns: np.ndarray
    nav_shape: tuple[int, ...]
    source: str


@dataclass
class TargetSpec:
    """One target source: a path and, optionally, its phase label (only for evaluation)."""

    path: str
    label: int | str | None = None

    @classmethod
    def parse(cls, text: str) -> TargetSpec:
        """Parse ``PATH`` or ``PATH=LABEL`` (LABEL an integer space group or a symbol)."""
        path, sep, label = text.rpartition("=") if "=" in text else (text, "", "")
        if not sep:
            return cls(text)
        if not label:
            raise PatternError(f"target {text!r}: empty label after '='")
        return cls(path, int(label) if label.lstrip("-").isdigit() else label)


def read_patterns(path: str | Path) -> PatternSet:
    """Read EBSD patterns from a kikuchipy-supported file or a folder of images.

    Parameters
    ----------
    path
        File (any kikuchipy EBSD format) or folder of ``.png/.tif/.jpg/.bmp`` images, which are
        read in name order as grey levels.

    Returns
    -------
    PatternSet
    """
    path = Path(path)
    if path.is_dir():
        return _read_image_folder(path)
    if not path.is_file():
        raise PatternError(f"patterns {path}: no such file or folder")
    if path.suffix.lower() in IMAGE_SUFFIXES:  # one image reads as a folder of one
        return PatternSet(np.stack([_read_image(path)]), (1,), str(path))
    signal = _load_signal(path)
    if isinstance(signal, list):
        signal = signal[0]
    data = np.asarray(signal.data, dtype=np.float32)
    if data.ndim < 2:
        raise PatternError(f"patterns {path}: expected 2-D patterns, got shape {data.shape}")
    _check_pattern_shape(path, data.shape[-2:])
    nav_shape = tuple(data.shape[:-2]) or (1,)
    return PatternSet(data.reshape(-1, *data.shape[-2:]), nav_shape, str(path))


def _load_signal(path: Path):
    """kikuchipy's signal of ``path``; its warnings go to the debug log (``-v``), and a file
    it cannot read is one :class:`PatternError` naming the file and what it holds."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import kikuchipy as kp

        try:
            signal = kp.load(str(path), lazy=False)
        except Exception as exc:  # kikuchipy raises many types for unsupported files
            raise _unreadable(path, exc) from None
    for warning in caught:
        _log.debug("kikuchipy on %s: %s", path, one_line(warning.message))
    return signal


#: What a file starting with these bytes is (what a name's suffix may not say).
_SIGNATURES = (
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"BM", "a BMP image"),
)
_HDF5_SUFFIXES = (".h5", ".hdf5", ".h5ebsd", ".h5oina", ".oh5")


def _file_kind(path: Path) -> str:
    """What ``path`` holds, from its first bytes: a known signature, text, empty or unknown."""
    with path.open("rb") as handle:
        head = handle.read(512)
    if not head:
        return "nothing (empty file)"
    for signature, kind in _SIGNATURES:
        if head.startswith(signature):
            return kind
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "data of an unknown format"
    return "text"


def _unreadable(path: Path, exc: Exception) -> PatternError:
    """One line naming ``path`` and why kikuchipy cannot read it (no install advice for
    plugins, no "please report": the file is what is wrong)."""
    kind = _file_kind(path)
    suffix = path.suffix.lower()
    if suffix in _HDF5_SUFFIXES and kind != "an HDF5 file":
        return PatternError(f"patterns {path}: named {suffix} but holds {kind}, not HDF5")
    if kind.endswith("image"):
        return PatternError(
            f"patterns {path}: holds {kind} but is named {suffix or 'without a suffix'}; "
            f"rename it to one of {'/'.join(IMAGE_SUFFIXES)}"
        )
    reason = one_line(exc)
    if "pip install" in reason or "please report" in reason:
        reason = "not a format kikuchipy reads"
    return PatternError(f"patterns {path}: not a readable EBSD file ({kind}: {reason})")


def _read_image_folder(folder: Path) -> PatternSet:
    """Read every image of a folder (sorted by name) as a float32 grey pattern."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise PatternError(f"patterns {folder}: folder holds no {'/'.join(IMAGE_SUFFIXES)} images")
    images = [_read_image(p) for p in files]
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise PatternError(f"patterns {folder}: images differ in shape {sorted(shapes)}")
    return PatternSet(np.stack(images), (len(images),), str(folder))


def _read_image(path: Path) -> np.ndarray:
    """One image file as a float32 grey pattern; unreadable or tiny images name the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            pattern = np.asarray(image.convert("F"), dtype=np.float32)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise PatternError(f"patterns {path}: not a readable image ({one_line(exc)})") from None
    _check_pattern_shape(path, pattern.shape)
    return pattern


def _check_pattern_shape(path: str | Path, shape: tuple[int, ...]) -> None:
    """Raise :class:`PatternError` when a pattern side is below :data:`MIN_PATTERN_PX`."""
    if len(shape) != 2 or min(shape) < MIN_PATTERN_PX:
        raise PatternError(
            f"patterns {path}: {'x'.join(str(n) for n in shape)} px patterns are too small "
            f"(at least {MIN_PATTERN_PX} x {MIN_PATTERN_PX} px)"
        )


def prepare_patterns(patterns: np.ndarray, preprocess_config, image_size: int) -> torch.Tensor:
    """Resize patterns to the network input and pre-process them, in the stream's order.

    Parameters
    ----------
    patterns
        float (N, H, W) raw patterns.
    preprocess_config
        ``train.patterns.preprocess.PreprocessConfig`` of the run (the same as in training).
    image_size
        Output side in pixels.

    Returns
    -------
    torch.Tensor
        float32 (N, 1, image_size, image_size).
    """
    from train.patterns.preprocess import preprocess

    tensor = torch.from_numpy(np.ascontiguousarray(patterns, dtype=np.float32))[:, None]
    if tensor.shape[-2:] != (image_size, image_size):
        tensor = F.interpolate(
            tensor, size=(image_size, image_size), mode="bilinear", antialias=True
        )
    processed = preprocess(tensor[:, 0].numpy(), preprocess_config)
    return torch.from_numpy(np.ascontiguousarray(processed, dtype=np.float32))[:, None]


def image_quality(patterns: np.ndarray) -> np.ndarray:
    """Image quality Q (Krieger Lassen, via kikuchipy) of each pattern, float32 (N,).

    A flat pattern (a scan point never recorded: EDAX's up2 files pad their last row with
    zeros) has no bands and Q = 0; kikuchipy's formula would divide by its zero spectrum.
    """
    from kikuchipy.pattern import fft_frequency_vectors, get_image_quality

    shape = patterns.shape[-2:]
    vectors = fft_frequency_vectors(shape)
    inertia_max = np.sum(vectors) / (shape[0] * shape[1])
    return np.array(
        [
            get_image_quality(p, True, vectors, inertia_max) if np.ptp(p) > 0 else 0.0
            for p in patterns
        ],
        dtype=np.float32,
    )


def top_by_quality(patterns: np.ndarray, n: int | None) -> np.ndarray:
    """Indices of the ``n`` patterns of highest image quality (all, best first, if ``n`` None)."""
    order = np.argsort(-image_quality(patterns), kind="stable")
    return order if n is None else order[:n]


@dataclass
class TargetSet:
    """The MCD target domain, ready for the network.

    Attributes
    ----------
    patterns
        float32 (N, 1, S, S) pre-processed patterns.
    labels
        Label value per pattern (``None`` where the source had no label).
    sources
        Source path per pattern.
    """

    patterns: torch.Tensor
    labels: list
    sources: list[str]

    @property
    def labelled(self) -> bool:
        """Whether every pattern carries a label (evaluation is possible)."""
        return bool(self.labels) and all(label is not None for label in self.labels)


def load_target_set(
    specs: list[TargetSpec], top_n: int | None, preprocess_config, image_size: int
) -> TargetSet:
    """Read each target source, keep its ``top_n`` best patterns by image quality, prepare them.

    Each source is one phase (the paper selects the top 100 per phase).
    """
    if not specs:
        raise PatternError("target set: no target files given (--target PATH[=LABEL])")
    tensors, labels, sources = [], [], []
    for spec in specs:
        pattern_set = read_patterns(spec.path)
        keep = top_by_quality(pattern_set.patterns, top_n)
        tensors.append(prepare_patterns(pattern_set.patterns[keep], preprocess_config, image_size))
        labels += [spec.label] * len(keep)
        sources += [spec.path] * len(keep)
    return TargetSet(torch.cat(tensors), labels, sources)
