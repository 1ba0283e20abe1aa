"""EBSD detector geometry: shape, binning, pixel size, tilts and pattern centre (PC).

The PC is stored in Bruker's convention (fractions of the detector width and height from the
upper-left corner; ``pcz`` = distance / height), as kikuchipy does internally, and converts to and
from EDAX/TSL, Oxford and EMsoft (``xpc``, ``ypc`` in pixels from the screen centre, ``L`` in um).
The rotation between the sample and detector frames is de-ebsd's port of kikuchipy's, so a
:class:`Detector` projects exactly where ``kikuchipy.detectors.EBSDDetector`` does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from de_ebsd.core.geometry import sample_to_detector_matrix

from train.patterns.errors import PatternError

#: The paper's microscope (Yan et al. 2025, after Kaufmann et al. 2020): detector distance and
#: tilt are stated; the PC (171 um above the screen centre) and the 23 um pixel are the paper's
#: estimates. The screen's pixel count is not given; 480 x 480 is assumed here.
PAPER_DISTANCE_UM = 19100.0
PAPER_DETECTOR_TILT_DEG = 13.7
PAPER_SAMPLE_TILT_DEG = 70.0
PAPER_PC_ABOVE_CENTRE_UM = 171.0
PAPER_PIXEL_SIZE_UM = 23.0
PAPER_SCREEN_PIXELS = 480

PC_CONVENTIONS = ("bruker", "tsl", "edax", "oxford", "emsoft")


class DetectorError(PatternError):
    """A detector parameter is out of range or a PC convention is unknown."""


@dataclass(frozen=True)
class Detector:
    """A flat EBSD detector seen from the detector towards the sample.

    Parameters
    ----------
    shape
        Binned pattern shape (rows, columns) in pixels.
    pc
        Pattern centre (PCx, PCy, PCz) in Bruker's convention (fractions of the binned width,
        height and height).
    px_size_um
        Unbinned detector pixel size in um.
    binning
        How many unbinned pixels make one pattern pixel along each axis.
    tilt_deg
        Detector tilt about the detector horizontal, in degrees.
    sample_tilt_deg
        Sample tilt about the microscope X axis, in degrees (70 for EBSD).
    azimuthal_deg
        Detector rotation about its vertical, in degrees.
    twist_deg
        Detector rotation about its normal, in degrees.
    """

    shape: tuple[int, int] = (60, 60)
    pc: tuple[float, float, float] = (0.5, 0.5, 0.5)
    px_size_um: float = 1.0
    binning: int = 1
    tilt_deg: float = 0.0
    sample_tilt_deg: float = 70.0
    azimuthal_deg: float = 0.0
    twist_deg: float = 0.0

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in self.shape)
        if len(shape) != 2 or min(shape) < 1:
            raise DetectorError(f"detector shape {self.shape}: need two positive pixel counts")
        pc = tuple(float(v) for v in self.pc)
        if len(pc) != 3 or pc[2] <= 0:
            raise DetectorError(f"detector pc {self.pc}: need (PCx, PCy, PCz) with PCz > 0")
        if self.px_size_um <= 0 or int(self.binning) < 1:
            raise DetectorError("detector px_size_um must be > 0 and binning >= 1")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "pc", pc)
        object.__setattr__(self, "binning", int(self.binning))

    # ---------------------------------------------------------------- presets and builders

    @classmethod
    def paper(
        cls,
        shape: tuple[int, int] = (PAPER_SCREEN_PIXELS, PAPER_SCREEN_PIXELS),
        screen_pixels: int = PAPER_SCREEN_PIXELS,
    ) -> Detector:
        """The paper's geometry: L = 19100 um, detector tilt 13.7 deg, sample tilt 70 deg.

        The PC lies 171 um above the screen centre with 23 um pixels (the paper's estimates) on a
        ``screen_pixels``-wide square screen (assumed: 480). A smaller ``shape`` keeps the same
        screen and bins it, so the patterns show the same part of the sphere at any resolution.
        """
        rows, cols = (int(s) for s in shape)
        height_um = screen_pixels * PAPER_PIXEL_SIZE_UM
        pcy = 0.5 - PAPER_PC_ABOVE_CENTRE_UM / height_um
        pcz = PAPER_DISTANCE_UM / height_um
        return cls(
            shape=(rows, cols),
            pc=(0.5, pcy, pcz),
            px_size_um=PAPER_PIXEL_SIZE_UM * screen_pixels / rows,
            binning=1,
            tilt_deg=PAPER_DETECTOR_TILT_DEG,
            sample_tilt_deg=PAPER_SAMPLE_TILT_DEG,
        )

    @classmethod
    def from_pc(
        cls,
        pc: tuple[float, float, float],
        convention: str = "bruker",
        **fields: object,
    ) -> Detector:
        """Build a detector from a PC given in ``convention``.

        Parameters
        ----------
        pc
            For "bruker", "tsl"/"edax", "oxford": fractions as the vendor defines them. For
            "emsoft": ``(xpc, ypc, L)`` with ``xpc, ypc`` in unbinned pixels from the screen
            centre (x right, y up; EMsoft >= 5) and ``L`` in um.
        convention
            One of :data:`PC_CONVENTIONS`.
        **fields
            Other :class:`Detector` fields (shape, px_size_um, binning, tilts).
        """
        base = cls(**fields)  # type: ignore[arg-type]
        return dataclasses.replace(base, pc=base._to_bruker(pc, convention))

    def refine(self, **changes: object) -> Detector:
        """Return a copy with ``changes`` applied (fields as in the constructor)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def with_shape(self, shape: tuple[int, int]) -> Detector:
        """Same screen and PC at another resolution (pixel size scaled to keep the screen)."""
        scale = self.shape[0] / int(shape[0])
        return self.refine(shape=tuple(shape), px_size_um=self.px_size_um * scale)

    # ---------------------------------------------------------------- conventions

    @property
    def nrows(self) -> int:
        """Number of pattern rows (binned)."""
        return self.shape[0]

    @property
    def ncols(self) -> int:
        """Number of pattern columns (binned)."""
        return self.shape[1]

    @property
    def height_um(self) -> float:
        """Screen height in um."""
        return self.nrows * self.binning * self.px_size_um

    @property
    def distance_um(self) -> float:
        """Sample-to-screen distance (EMsoft's ``L``) in um."""
        return self.pc[2] * self.height_um

    def _to_bruker(self, pc: tuple[float, float, float], convention: str) -> tuple:
        x, y, z = (float(v) for v in pc)
        ny, nx = self.nrows, self.ncols
        name = convention.lower()
        if name == "bruker":
            return (x, y, z)
        if name in ("tsl", "edax"):
            return (x, 1.0 - y, z * min(nx, ny) / ny)
        if name == "oxford":
            return (x, 1.0 - y * nx / ny, z * nx / ny)
        if name == "emsoft":
            b, delta = self.binning, self.px_size_um
            return (0.5 - x / (nx * b), 0.5 - y / (ny * b), z / (ny * b * delta))
        raise DetectorError(f"PC convention {convention!r}: not one of {PC_CONVENTIONS}")

    def pc_as(self, convention: str) -> tuple[float, float, float]:
        """The PC in ``convention`` (inverse of :meth:`from_pc`)."""
        x, y, z = self.pc
        ny, nx = self.nrows, self.ncols
        name = convention.lower()
        if name == "bruker":
            return (x, y, z)
        if name in ("tsl", "edax"):
            return (x, 1.0 - y, z * ny / min(nx, ny))
        if name == "oxford":
            return (x, (1.0 - y) * ny / nx, z * ny / nx)
        if name == "emsoft":
            b, delta = self.binning, self.px_size_um
            return ((0.5 - x) * nx * b, (0.5 - y) * ny * b, z * ny * b * delta)
        raise DetectorError(f"PC convention {convention!r}: not one of {PC_CONVENTIONS}")

    def to_kikuchipy(self):
        """The equivalent ``kikuchipy.detectors.EBSDDetector`` (imports kikuchipy)."""
        from kikuchipy.detectors import EBSDDetector

        return EBSDDetector(
            shape=self.shape,
            pc=self.pc,
            px_size=self.px_size_um,
            binning=self.binning,
            tilt=self.tilt_deg,
            azimuthal=self.azimuthal_deg,
            twist=self.twist_deg,
            sample_tilt=self.sample_tilt_deg,
            convention="bruker",
        )

    # ---------------------------------------------------------------- geometry

    def sample_to_detector(self) -> np.ndarray:
        """(3, 3) matrix whose rows are the detector axes in sample coordinates (float64)."""
        return sample_to_detector_matrix(
            self.sample_tilt_deg, self.tilt_deg, self.azimuthal_deg, self.twist_deg
        )

    def direction_cosines(self, pcs: np.ndarray | None = None) -> np.ndarray:
        """Unit vectors from the beam spot to each pixel centre, in the sample frame.

        Parameters
        ----------
        pcs
            Optional (B, 3) Bruker PCs, one per pattern (for PC jitter); default: this
            detector's PC.

        Returns
        -------
        numpy.ndarray
            float64, (H*W, 3) for the detector's PC or (B, H*W, 3) for ``pcs``; row-major over
            the pattern with row 0 at the top, as kikuchipy orders pixels.
        """
        single = pcs is None
        pc = np.asarray(self.pc if single else pcs, dtype=np.float64).reshape(-1, 3)
        ny, nx = self.shape
        cols = (np.arange(nx) + 0.5) / ny  # x in units of the height
        rows = (np.arange(ny) + 0.5) / ny
        x = cols[None, None, :] - (pc[:, 0] * nx / ny)[:, None, None]
        y = (pc[:, 1])[:, None, None] - rows[None, :, None]
        rays = np.empty((pc.shape[0], ny, nx, 3))
        rays[..., 0] = np.broadcast_to(x, rays.shape[:3])
        rays[..., 1] = np.broadcast_to(y, rays.shape[:3])
        rays[..., 2] = pc[:, 2][:, None, None]
        dc = rays.reshape(pc.shape[0], -1, 3) @ self.sample_to_detector()
        dc /= np.linalg.norm(dc, axis=-1, keepdims=True)
        return dc[0] if single else dc
