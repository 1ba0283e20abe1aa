"""Why de-ebsd and EMsoft's non-cubic masters differ (issue #14), pinned.

Neither is a crystal-frame difference: both engines build the Cartesian frame the same way
(a along x, c* along z). Two EMsoft behaviours explain it:

* hexagonal/trigonal: EMEBSDmaster computes on a hexagonal Lambert grid and interpolates onto
  the square one; de-ebsd sampled the same way (``scripts/emsoft_hex_sampling.py``) agrees.
* P4_2/mnm (rutile): EMsoft's symmetry fill uses only point operators without translation,
  so half of each hemisphere stays zero; where EMsoft filled, the engines agree.

The pure-Python tests check the ported Lambert maps; the others run EMsoft's programs at
npx 12 (a few seconds each) and skip without them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from emsoft_hex_sampling import (  # noqa: E402
    dynamical_intensity,
    emsoft_hex_master,
    hex_to_sphere,
    sphere_to_hex,
    square_to_sphere,
)
from test_emsoft_real import EMSOFT_BIN, SKIP_REASON  # noqa: E402

from simulate.emsoft_io import read_settings, read_structure  # noqa: E402
from simulate.engine_emsoft import EmsoftEngine  # noqa: E402
from simulate.engines import get_engine  # noqa: E402
from simulate.reference_structures import reference_structure  # noqa: E402
from simulate.settings import SimulationSettings  # noqa: E402

needs_emsoft = pytest.mark.skipif(EMSOFT_BIN is None, reason=SKIP_REASON)

#: One 20 keV plane, npx 12: seconds per material on 2 cores.
TINY = SimulationSettings(
    engine="emsoft",
    npx=12,
    dmin_nm=0.1,
    energy_min_kev=20.0,
    mc_electrons=50_000,
    bethe_strong=4.0,
    bethe_weak=8.0,
    bethe_cutoff=50.0,
)


def _r(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def test_hex_lambert_round_trip():
    """sphere_to_hex inverts hex_to_sphere on the hexagon (EMsoft's 1e-4 offset aside); grid
    nodes beyond the hexagon map below the equator, as in EMsoft."""
    npx = 10
    for i in range(-npx, npx + 1):
        for j in range(-npx, npx + 1):
            xy = np.array([i, j]) / npx
            v = hex_to_sphere(xy)
            if v is None or v[2] < 0:
                continue
            assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-9)
            assert np.allclose(sphere_to_hex(v), xy, atol=1e-3)


def test_square_lambert_matches_de_ebsd_grid():
    """The ported square map gives de-ebsd's pixel directions (rows y, columns x)."""
    from de_ebsd.core.lambert import master_pattern_grid

    npx = 6
    grid = master_pattern_grid(npx).double().numpy()
    for row in range(2 * npx + 1):
        for col in range(2 * npx + 1):
            v = square_to_sphere(np.array([col - npx, row - npx]) / npx)
            assert np.allclose(v, grid[row, col], atol=1e-6)


def test_hex_sampling_reproduces_a_smooth_field():
    """A smooth intensity survives the hex grid + bilinear interpolation almost unchanged;
    southern pixels next to the equator interpolate with EMsoft's empty equator nodes."""
    npx = 20
    field = lambda v: 2.0 + v[:, 0] + 0.5 * v[:, 1] * v[:, 2]  # noqa: E731
    sampled = emsoft_hex_master(field, npx)
    rows, cols = np.mgrid[-npx : npx + 1, -npx : npx + 1]
    exact = np.zeros_like(sampled)
    for r, c in zip(rows.ravel(), cols.ravel(), strict=True):
        v = square_to_sphere(np.array([c, r]) / npx)
        exact[0, r + npx, c + npx] = field(v[None])[0]
        exact[1, r + npx, c + npx] = field((v * [1, 1, -1])[None])[0]
    inner = (slice(2, -2), slice(2, -2))
    assert np.abs(sampled[0] - exact[0])[inner].max() < 0.01
    assert _r(sampled[0][inner], exact[0][inner]) > 0.9999


@pytest.fixture
def _emsoft_env(monkeypatch):
    monkeypatch.setenv("EMSOFT_BIN", str(EMSOFT_BIN))
    monkeypatch.delenv("EMSOFT_MC", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")


def _both(name: str, keep: Path):
    emsoft = EmsoftEngine(keep_dir=keep, check_filled=False).run(reference_structure(name), TINY)
    (path,) = keep.glob("*/mc.h5")
    same = read_settings(path).refine(engine="dynamical", device="cpu")
    ours = get_engine("dynamical").run({**read_structure(path), "material_id": name}, same)
    return path, ours.master[-1], emsoft.master[-1]


@needs_emsoft
@pytest.mark.usefixtures("_emsoft_env")
@pytest.mark.parametrize("name", ["Mg", "Al2O3"])
def test_hexagonal_axes_agree_once_sampled_like_emsoft(tmp_path, name):
    """Mg (P6_3/mmc) and corundum (R-3c on hexagonal axes, de-ebsd's rhombohedral centring
    fix): r < 0.99 pixel by pixel, r >= 0.999 with EMsoft's hexagonal sampling inside the
    equator. On the equator ring itself a minority of pixels near the hexagon's corners still
    differ (there EMsoft's interpolation mixes nodes the port maps below the equator; up to 20 %
    lower in EMsoft, which breaks the ring's own mirror symmetry): pinned as confined to the ring.
    """
    path, ours, theirs = _both(name, tmp_path)
    direct = _r(ours[0], theirs[0])
    intensity, npx = dynamical_intensity(str(path))
    sampled = emsoft_hex_master(intensity, npx)
    inner = (slice(1, -1), slice(1, -1))
    ring = np.ones(theirs[0].shape, bool)
    ring[inner] = False
    for hemisphere in (0, 1):
        ems, port = theirs[hemisphere], sampled[hemisphere]
        assert _r(port[inner], ems[inner]) >= 0.999
        off = np.abs(port - ems) > 0.01 * ems.max()
        assert not off[inner].any()
        assert off[ring].sum() <= 0.3 * ring.sum()  # the corner pixels, as measured: 20-24 of 96
    assert direct < 0.99  # the pixel-by-pixel difference is EMsoft's sampling


@needs_emsoft
@pytest.mark.usefixtures("_emsoft_env")
def test_rutile_emsoft_leaves_half_the_sphere_empty(tmp_path):
    """TiO2 (P4_2/mnm): EMsoft fills only the quadrants x*y > 0 (its point group lacks the
    4-fold axis, whose operators all carry a translation); there the engines agree."""
    _, ours, theirs = _both("TiO2", tmp_path)
    filled = theirs != 0
    assert 0.4 < 1.0 - filled.mean() < 0.55
    n = theirs.shape[-1] // 2
    assert not theirs[:, :n, n + 1 :].any() and not theirs[:, n + 1 :, :n].any()
    assert _r(ours[filled], theirs[filled]) >= 0.9999
    assert ours.min() > 0  # de-ebsd fills every pixel
