"""Gnomonic projection of square-Lambert masters onto a detector, batched, in PyTorch.

One batch may mix materials: ``masters`` stacks one (2, n, n) energy-reduced master per material
and ``material_index`` says which one each pattern reads. The same code runs on CPU and CUDA.
It reproduces kikuchipy's ``EBSDMasterPattern.get_patterns`` (pixel centres, sample-to-detector
rotation, quaternion convention, Lambert map and bilinear interpolation).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from train.patterns.detector import Detector
from train.patterns.errors import PatternError
from train.patterns.lambert import bilinear_gather, lambert_pixels, project_cpu_fused
from train.patterns.orientations import quaternions_to_matrices


class ProjectionError(PatternError):
    """Masters, indices, orientations or an energy request do not fit together."""


def energy_reduced_master(
    master: Any,
    weights: Any,
    energies_kev: Any,
    energy: str | float = "weighted",
) -> Any:
    """Reduce an (energy, 2, n, n) master to one (2, n, n) plane set.

    Parameters
    ----------
    master
        NumPy or Dask array (energy, hemisphere, row, col).
    weights
        (energy,) Monte Carlo backscatter yield per energy bin.
    energies_kev
        (energy,) bin energies in keV.
    energy
        ``"weighted"``: ``sum_E w_E master_E / sum_E w_E`` (EMsoft EMEBSD's yield weighting);
        a number: the plane at that energy in keV (must be one of ``energies_kev``).

    Returns
    -------
    Array of the input's kind (lazy stays lazy), float32, (2, n, n).
    """
    energies = np.asarray(energies_kev, dtype=np.float64).ravel()
    if isinstance(energy, str):
        if energy != "weighted":
            raise ProjectionError(f"energy {energy!r}: use 'weighted' or a plane energy in keV")
        w = np.asarray(weights, dtype=np.float64).ravel()
        if w.size != master.shape[0] or not np.isfinite(w).all() or w.sum() <= 0:
            raise ProjectionError(
                f"weights: need {master.shape[0]} finite non-negative yields with a positive sum"
            )
        w32 = (w / w.sum()).astype(np.float32)
        return (master * w32[:, None, None, None]).sum(axis=0).astype(np.float32)
    matches = np.flatnonzero(np.isclose(energies, float(energy), atol=1e-6))
    if matches.size == 0:
        raise ProjectionError(f"energy {energy} keV: not among the master's {energies.tolist()}")
    return master[int(matches[0])].astype(np.float32)


class Projector:
    """Projects batches of patterns for one detector on one device.

    Parameters
    ----------
    detector
        Detector geometry (shape and default PC).
    device
        Torch device ("cpu", "cuda", "cuda:1", ...).
    chunk_pixels
        Work in slices of about this many output pixels (B * H * W) so intermediates stay in
        cache (tensor backend).
    backend
        "torch" (tensor ops, any device), "fused" (one Numba loop, CPU only, ~3x faster there)
        or "auto" (fused on CPU, torch elsewhere). Both give the same patterns.
    """

    def __init__(
        self,
        detector: Detector,
        device: str | torch.device = "cpu",
        chunk_pixels: int | None = None,
        backend: str = "auto",
    ) -> None:
        self.detector = detector
        self.device = torch.device(device)
        if backend not in ("auto", "torch", "fused"):
            raise ProjectionError(f"backend {backend!r}: use 'auto', 'torch' or 'fused'")
        if backend == "fused" and self.device.type != "cpu":
            raise ProjectionError("backend 'fused' runs on CPU only")
        self.backend = "fused" if backend == "auto" and self.device.type == "cpu" else backend
        if self.backend == "auto":
            self.backend = "torch"
        default_chunk = 1 << 16 if self.device.type == "cpu" else 1 << 26
        self.chunk_pixels = int(chunk_pixels or default_chunk)
        dc = torch.as_tensor(detector.direction_cosines(), dtype=torch.float32)
        self._dc = dc.T.contiguous().to(self.device)  # (3, P)

    def __call__(
        self,
        masters: torch.Tensor,
        material_index: torch.Tensor | np.ndarray,
        quaternions: torch.Tensor | np.ndarray,
        pcs: np.ndarray | None = None,
    ) -> torch.Tensor:
        """Project one pattern per (material, orientation).

        Parameters
        ----------
        masters
            float32 (M, 2, n, n) energy-reduced square-Lambert masters on this device.
        material_index
            int (B,) row of ``masters`` each pattern reads.
        quaternions
            (B, 4) unit quaternions (w, x, y, z), sample to crystal, as for kikuchipy.
        pcs
            Optional (B, 3) Bruker PCs, one per pattern (PC jitter); default: the detector's.

        Returns
        -------
        torch.Tensor
            float32 (B, H, W) patterns on this device.
        """
        if masters.ndim != 4 or masters.shape[1] != 2 or masters.shape[2] != masters.shape[3]:
            raise ProjectionError(f"masters shape {tuple(masters.shape)}: need (M, 2, n, n)")
        index = torch.as_tensor(np.asarray(material_index), dtype=torch.int64, device=self.device)
        quats = np.asarray(quaternions, dtype=np.float64).reshape(-1, 4)
        if index.shape[0] != quats.shape[0]:
            raise ProjectionError(
                f"{index.shape[0]} material indices but {quats.shape[0]} orientations"
            )
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= masters.shape[0]):
            raise ProjectionError(f"material_index outside 0..{masters.shape[0] - 1}")
        npx = int(masters.shape[-1])
        flat = masters.to(self.device, torch.float32).contiguous().view(-1)
        rot = torch.as_tensor(quaternions_to_matrices(quats), dtype=torch.float32)
        rot = rot.to(self.device)
        if pcs is None:
            dc = self._dc.unsqueeze(0)  # (1, 3, P)
        else:
            own = self.detector.direction_cosines(np.asarray(pcs).reshape(-1, 3))
            dc = torch.as_tensor(own, dtype=torch.float32).transpose(1, 2).to(self.device)
        n_pat, n_px = index.shape[0], self._dc.shape[1]
        if self.backend == "fused":
            fused = project_cpu_fused(
                flat.numpy(),
                npx,
                index.numpy(),
                quaternions_to_matrices(quats),
                dc.contiguous().numpy(),
            )
            return torch.from_numpy(fused).view(n_pat, *self.detector.shape)
        out = torch.empty((n_pat, n_px), dtype=torch.float32, device=self.device)
        step = max(1, self.chunk_pixels // n_px)
        for start in range(0, n_pat, step):
            sl = slice(start, start + step)
            dcs = dc if dc.shape[0] == 1 else dc[sl]
            out[sl] = self._project_chunk(flat, npx, index[sl], rot[sl], dcs)
        return out.view(n_pat, *self.detector.shape)

    @staticmethod
    def _project_chunk(
        flat: torch.Tensor,
        npx: int,
        index: torch.Tensor,
        rot: torch.Tensor,
        dc: torch.Tensor,
    ) -> torch.Tensor:
        """Rotate rays into each crystal, look them up in the Lambert square, interpolate."""
        dx, dy, dz = dc[:, 0], dc[:, 1], dc[:, 2]  # (1 or b, P)
        r = rot.unsqueeze(-1)  # (b, 3, 3, 1)
        x = r[:, 0, 0] * dx + r[:, 0, 1] * dy + r[:, 0, 2] * dz
        y = r[:, 1, 0] * dx + r[:, 1, 1] * dy + r[:, 1, 2] * dz
        z = r[:, 2, 0] * dx + r[:, 2, 1] * dy + r[:, 2, 2] * dz
        rows, cols = lambert_pixels(x, y, z, npx)
        hemisphere = (z < 0).to(torch.int64)  # north (0) for z >= 0, as kikuchipy
        plane_offset = (index.unsqueeze(1) * 2 + hemisphere) * (npx * npx)
        return bilinear_gather(flat, plane_offset, rows, cols, npx)


def project(
    masters: torch.Tensor,
    material_index: torch.Tensor | np.ndarray,
    quaternions: torch.Tensor | np.ndarray,
    detector: Detector,
    pcs: np.ndarray | None = None,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """One-shot :class:`Projector` call; see :meth:`Projector.__call__` for the arguments."""
    dev = device if device is not None else masters.device
    return Projector(detector, device=dev)(masters, material_index, quaternions, pcs)
