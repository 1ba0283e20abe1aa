"""EMEBSDmaster's hexagonal sampling, for comparing another engine with EMsoft (issue #14).

For hexagonal and trigonal crystals ``EMEBSDmaster`` (``usehex``) does not compute the square
Lambert pixels: it computes the intensities on a *hexagonal* Lambert grid of the same ``npx``
and then fills each square pixel by bilinear interpolation between the four hexagonal grid
points around it (``Source/SEM/EMEBSDmaster.f90``, after the beam loop). Grid points on the
equator are stored in the northern array only (``Apply3DPGSymmetry`` calls ``z >= -1e-4``
north), so southern pixels next to the equator interpolate with zeros. At small ``npx`` the
interpolation smooths a pattern whose detail is a pixel wide, and an engine that computes every
square pixel exactly (de-ebsd) correlates only r ~ 0.6-0.7 with EMsoft while agreeing
(r = 1.0) once it is sampled the same way. :func:`emsoft_hex_master` does that sampling with
any engine's intensities; the Lambert maps are ports of EMsoft's ``Lambert2DHexForward``,
``Lambert2DHexInverse`` and ``Lambert2DSquareForward`` (``EMsoftLib/Lambert.f90``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# EMsoft's LambertParametersType constants (EMsoftLib/constants.f90), at their precision.
_PI = np.pi
_SPIO2 = np.sqrt(np.pi / 2.0)
_SRT = 0.86602540378
_ISRT = 0.57735026919
_RTT = 1.732050807568877
_PREA = 0.525037567904332
_PREB = 1.050075135808664
_PREC = 0.906899682117109
_PRED = 2.094395102393195
_PREE = 0.759835685651593
_PREF = 1.381976597885342
_PREG = 1.5551203015562141
#: ``Apply3DPGSymmetry``'s hemisphere threshold: ``z < -1e-4`` is south.
_SOUTH_BELOW = -1e-4


def _sextant(x: float, y: float) -> int:
    xx = abs(x * _ISRT)
    if x >= 0.0:
        return 0 if abs(y) <= xx else (1 if y > xx else 5)
    return 3 if abs(y) <= xx else (2 if y > xx else 4)


def hex_to_sphere(xy: np.ndarray) -> np.ndarray | None:
    """Unit vector of hexagonal-Lambert coordinates ``xy`` (grid index / npx), as EMsoft's
    ``LambertHexToSphere``: north inside the hexagon, below the equator for grid nodes beyond
    it, None where EMsoft's map fails (``ierr = 1``)."""
    xyc = np.array([xy[0] - 0.5 * xy[1], xy[1] * _SRT]) * _PREG
    if np.max(np.abs(xyc)) == 0.0:
        return np.array([0.0, 0.0, 1.0])
    x2, y2 = xyc[1], xyc[0]
    ks = _sextant(x2, y2)
    if ks in (0, 3):
        q = y2 * _PREC / x2
        xx, yy = _PREB * x2 * np.cos(q), _PREB * x2 * np.sin(q)
    elif ks in (1, 4):
        xp = x2 + _RTT * y2
        yp = x2 * _PRED / xp
        xx, yy = _PREA * xp * np.sin(yp), _PREA * xp * np.cos(yp)
    else:
        xp = x2 - _RTT * y2
        yp = x2 * _PRED / xp
        xx, yy = _PREA * xp * np.sin(yp), -_PREA * xp * np.cos(yp)
    q = xx * xx + yy * yy
    if q > 4.0:
        return None
    root = np.sqrt(4.0 - q)
    return np.array([0.5 * yy * root, 0.5 * xx * root, 1.0 - 0.5 * q])


def sphere_to_hex(xyz: np.ndarray) -> np.ndarray:
    """Hexagonal-Lambert coordinates (grid index / npx) of a unit vector, either hemisphere
    (EMsoft's ``LambertSphereToHex``, including its ``1e-4`` offset)."""
    if abs(xyz[2]) == 1.0:
        res = (0.0, 0.0)
    else:
        q = np.sqrt(2.0 / (1.0 + abs(xyz[2])))
        xx, yy = q * xyz[1] + 1e-4, q * xyz[0] + 1e-4
        ks = _sextant(xx, yy)
        sgn = np.hypot(xx, yy) * (-1.0 if xx < 0.0 else 1.0)
        if ks in (0, 3):
            q = _PREE * sgn
            xxx = q * _SPIO2
            yyy = _PREF * _PI * 0.5 if xx == 0.0 else q * _PREF * np.arctan(yy / xx)
        elif ks in (1, 4):
            q = _PREA * sgn
            qq = np.arctan((yy - _RTT * xx) / (xx + _RTT * yy))
            xxx, yyy = q * _RTT * (_PI / 6.0 - qq), q * (0.5 * _PI + qq)
        else:
            q = _PREA * sgn
            qq = np.arctan((yy + _RTT * xx) / (xx - _RTT * yy))
            xxx, yyy = q * _RTT * (_PI / 6.0 + qq), q * (-0.5 * _PI + qq)
        res = (yyy, xxx)
    return np.array([res[0] + res[1] * _ISRT, res[1] * 2.0 * _ISRT]) / _PREG


def square_to_sphere(xy: np.ndarray) -> np.ndarray:
    """Unit vector (north) of square-Lambert coordinates ``xy`` in [-1, 1]^2 (pixel / npx)."""
    x, y = np.asarray(xy, dtype=np.float64) * _SPIO2
    if max(abs(x), abs(y)) == 0.0:
        return np.array([0.0, 0.0, 1.0])
    if abs(x) <= abs(y):
        q, qq = 2.0 * y / _PI * np.sqrt(_PI - y * y), x * _PI * 0.25 / y
        v = np.array([q * np.sin(qq), q * np.cos(qq), 1.0 - 2.0 * y * y / _PI])
    else:
        q, qq = 2.0 * x / _PI * np.sqrt(_PI - x * x), y * _PI * 0.25 / x
        v = np.array([q * np.cos(qq), q * np.sin(qq), 1.0 - 2.0 * x * x / _PI])
    return v / np.linalg.norm(v)


def emsoft_hex_master(intensity: Callable[[np.ndarray], np.ndarray], npx: int) -> np.ndarray:
    """The square-Lambert master ``(2, 2 npx + 1, 2 npx + 1)`` (north, south; rows y, columns
    x) EMEBSDmaster would store for a hexagonal or trigonal crystal whose intensity at unit
    vectors ``(N, 3)`` is ``intensity``.
    """
    n = 2 * npx + 1
    keys, dirs = [], []
    for i in range(-npx, npx + 1):
        for j in range(-npx, npx + 1):
            v = hex_to_sphere(np.array([i, j], dtype=np.float64) / npx)
            if v is not None:
                keys.append((i + npx, j + npx))
                dirs.append(v)
    dirs_n = np.array(dirs)
    values_n = np.asarray(intensity(dirs_n), dtype=np.float64)
    south = dirs_n * np.array([1.0, 1.0, -1.0])
    values_s = np.asarray(intensity(south), dtype=np.float64)
    values_s[south[:, 2] >= _SOUTH_BELOW] = 0.0  # equator points are stored north only
    aux = np.zeros((2, n, n))
    rows, cols = np.array(keys).T
    aux[0, rows, cols] = values_n
    aux[1, rows, cols] = values_s
    out = np.zeros((2, n, n))
    for i in range(-npx, npx + 1):
        for j in range(-npx, npx + 1):
            xy = npx * sphere_to_hex(square_to_sphere(np.array([i, j]) / npx))
            nix, niy = int(np.floor(xy[0])), int(np.floor(xy[1]))
            nixp = nix + 1 if nix + 1 <= npx else nix
            niyp = niy + 1 if niy + 1 <= npx else niy
            dx, dy = xy[0] - nix, xy[1] - niy
            a = aux[
                :,
                [nix + npx, nixp + npx, nix + npx, nixp + npx],
                [niy + npx, niy + npx, niyp + npx, niyp + npx],
            ]
            weights = np.array([(1 - dx) * (1 - dy), dx * (1 - dy), (1 - dx) * dy, dx * dy])
            out[:, j + npx, i + npx] = a @ weights
    # EMsoft copies the northern outer rim onto the southern one
    for index in (0, -1):
        out[1, index, :] = out[0, index, :]
        out[1, :, index] = out[0, :, index]
    return out


def dynamical_intensity(emsoft_file: str, device: str = "cpu") -> tuple[Callable, int]:
    """de-ebsd's beam-energy intensity at unit vectors for the crystal, settings and Monte
    Carlo of an EMsoft master file, and the file's ``npx``."""
    import torch
    from de_ebsd import BlochPrismBackend, MasterPatternSimulator, Microscope
    from de_ebsd.diffraction.backends import SimulationInputs

    from simulate.emsoft_io import read_settings, read_structure
    from simulate.engine_dynamical import bethe_parameters, monte_carlo, resolve_device
    from simulate.structure import build_crystal

    settings = read_settings(emsoft_file)
    crystal = build_crystal({**read_structure(emsoft_file), "material_id": "emsoft"})
    dev = resolve_device(device)
    depth, _ = monte_carlo(crystal, settings, dev)
    cdtype = torch.complex128 if settings.precision == "double" else torch.complex64
    simulator = MasterPatternSimulator(
        crystal,
        Microscope(energy=settings.voltage_kv * 1e3, sample_tilt=settings.sample_tilt_deg),
        npx=int(settings.npx),
        dmin=float(settings.dmin_nm),
        bethe=bethe_parameters(settings),
        monte_carlo=depth,
        backend=BlochPrismBackend(cdtype=cdtype),
    )
    backend = simulator.backend
    backend.prepare(
        SimulationInputs(
            structure_factors=simulator.structure_factors(),
            bethe=simulator.bethe,
            monte_carlo=depth,
            device=dev,
            dtype=torch.float32,
        )
    )

    def intensity(directions: np.ndarray) -> np.ndarray:
        batch = torch.as_tensor(np.asarray(directions), dtype=torch.float32, device=dev)
        return backend.intensities(batch).detach().cpu().numpy().astype(np.float64)

    return intensity, int(settings.npx)
