"""What a pattern file says about how it was recorded: detector geometry and static background.

kikuchipy reads both from the files it supports (h5ebsd stores a pattern centre, binning, tilts
and a static background; NORDIF a background image; some files nothing, in which case kikuchipy
fills in a default centre of (0.5, 0.5, 0.5)). A geometry is used only when the file really
carries one: a default or impossible centre is reported as absent, never silently used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from train.patterns.detector import Detector, DetectorError

KIKUCHIPY_DEFAULT_PC = (0.5, 0.5, 0.5)
"""The centre kikuchipy assigns when a file has none (Bruker convention)."""


@dataclass(frozen=True)
class ScanGeometry:
    """How a scan's patterns were recorded, as far as is known.

    Attributes
    ----------
    detector
        The recording detector (pattern centre, shape, tilts), or None when unknown.
    static_background
        float32 (H, W) static background of the scan, or None.
    note
        One line saying what was used and where it came from (shown with the predictions).
    beam_energy_kv
        The beam energy (kV) the file records, or None.
    """

    detector: Detector | None = None
    static_background: np.ndarray | None = None
    note: str = "no geometry known"
    beam_energy_kv: float | None = None


@dataclass(frozen=True)
class GivenGeometry:
    """A recording geometry the user states (``predict --pc X Y Z --pc-convention NAME``).

    Attributes
    ----------
    pc
        Pattern centre in ``convention`` (``train.patterns.detector.PC_CONVENTIONS``).
    convention
        "bruker", "tsl"/"edax", "oxford" or "emsoft".
    detector_tilt_deg, sample_tilt_deg
        Detector tilt and sample tilt in degrees.
    """

    pc: tuple[float, float, float]
    convention: str = "bruker"
    detector_tilt_deg: float = 0.0
    sample_tilt_deg: float = 70.0

    def for_shape(
        self,
        shape: tuple[int, int],
        static_background: np.ndarray | None = None,
        beam_energy_kv: float | None = None,
    ) -> ScanGeometry:
        """The geometry of patterns of ``shape`` (conventions other than Bruker's depend on it),
        with what the file itself records besides (background, beam energy)."""
        detector = Detector.from_pc(
            tuple(self.pc), self.convention, shape=tuple(shape),
            tilt_deg=self.detector_tilt_deg, sample_tilt_deg=self.sample_tilt_deg,
        )  # fmt: skip
        shown = ", ".join(f"{v:g}" for v in self.pc)
        note = f"pattern centre given ({self.convention} {shown})"
        if static_background is not None:
            note += "; static background from the file"
        return ScanGeometry(detector, static_background, note, beam_energy_kv)


def read_scan_geometry(path: str | Path, shape: tuple[int, int]) -> ScanGeometry:
    """The geometry and static background a pattern file carries (image folders carry none).

    Parameters
    ----------
    path
        A kikuchipy-readable file, or a folder of images.
    shape
        (rows, cols) of its patterns, to check the header against.
    """
    path = Path(path)
    if path.is_dir() or path.suffix.lower() in (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp"):
        return ScanGeometry(note="images carry no geometry: centre crop")
    signal = _lazy_signal(path)
    if signal is None:
        return ScanGeometry(note="geometry unreadable: centre crop")
    background = _static_background(signal, shape)
    detector, why = _recorded_detector(getattr(signal, "detector", None), shape)
    if detector is None:
        note = f"{why}: centre crop"
    else:
        shown = ", ".join(f"{v:.3f}" for v in detector.pc)
        note = f"pattern centre from the file (Bruker {shown})"
    if background is not None:
        note += "; static background from the file"
    return ScanGeometry(detector, background, note, recorded_beam_energy(signal))


def recorded_beam_energy(signal: Any) -> float | None:
    """The beam energy (kV) a kikuchipy signal's metadata records; None when absent or not a
    plausible SEM voltage (0-60 kV)."""
    try:
        value = float(signal.metadata.get_item("Acquisition_instrument.SEM.beam_energy"))
    except (AttributeError, TypeError, ValueError):
        return None
    return value if np.isfinite(value) and 0 < value <= 60 else None


def _lazy_signal(path: Path) -> Any:
    """The file opened lazily by kikuchipy (headers only), or None when it cannot be."""
    import warnings

    import kikuchipy as kp

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            signal = kp.load(str(path), lazy=True)
    except Exception:  # read_patterns reports unreadable files; here geometry is just unknown
        return None
    return signal[0] if isinstance(signal, list) else signal


def _static_background(signal: Any, shape: tuple[int, int]) -> np.ndarray | None:
    """The file's static background when it has one of the patterns' shape and some signal."""
    background = getattr(signal, "static_background", None)
    if background is None:
        return None
    data = np.asarray(background, dtype=np.float32)
    if data.shape != tuple(shape) or not np.isfinite(data).all() or data.max() <= 0:
        return None
    return data


def _recorded_detector(ebsd_detector: Any, shape: tuple[int, int]) -> tuple[Detector | None, str]:
    """Our :class:`Detector` for kikuchipy's, or None with the reason it is not usable."""
    if ebsd_detector is None:
        return None, "no detector in the file"
    pc = tuple(float(v) for v in np.asarray(ebsd_detector.pc_average).ravel()[:3])
    if np.allclose(pc, KIKUCHIPY_DEFAULT_PC):
        return None, "no pattern centre in the file"
    if not (0 < pc[2] < 10 and -1 < pc[0] < 2 and -1 < pc[1] < 2):
        return None, f"the file's pattern centre {pc} is not a usable geometry"
    try:
        detector = Detector(
            shape=tuple(shape),
            pc=pc,
            px_size_um=float(ebsd_detector.px_size),
            binning=int(ebsd_detector.binning),
            tilt_deg=float(ebsd_detector.tilt),
            sample_tilt_deg=float(ebsd_detector.sample_tilt),
            azimuthal_deg=float(getattr(ebsd_detector, "azimuthal", 0.0)),
            twist_deg=float(getattr(ebsd_detector, "twist", 0.0)),
        )
    except (DetectorError, TypeError, ValueError) as exc:
        return None, f"the file's detector is not usable ({exc})"
    return detector, ""
