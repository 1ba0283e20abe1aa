"""Projection, detector conventions and orientations, checked against kikuchipy's own code.

The master is EMsoft's Ni file that kikuchipy ships, or ``$EBSDLAKE_NI_MASTER`` where kikuchipy
is not installed (the GPU session kit); the comparisons with kikuchipy's code then skip.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from simulate.emsoft_io import read_master
from simulate.validation import emsoft_ni_master_file
from train.patterns.detector import Detector, DetectorError
from train.patterns.orientations import reduce_to_fundamental_zone, sample_so3
from train.patterns.projection import ProjectionError, Projector, energy_reduced_master


def kikuchipy_or_skip():
    """kikuchipy (a hard dependency: ImportError fails the test), skipped only under the GPU
    session kit, which ships the Ni file (``$EBSDLAKE_NI_MASTER``) but not kikuchipy."""
    try:
        import kikuchipy
    except ImportError:
        if os.environ.get("EBSDLAKE_NI_MASTER"):
            pytest.skip("the GPU session kit ships no kikuchipy")
        raise
    return kikuchipy


@pytest.fixture(scope="module")
def ni_master() -> np.ndarray:
    """EMsoft's Ni master at 20 keV, both hemispheres, float32 ``(2, 401, 401)``."""
    result = read_master(emsoft_ni_master_file())
    plane = int(np.argmin(np.abs(np.asarray(result.energies_kev) - 20.0)))
    return np.ascontiguousarray(result.master[plane], dtype=np.float32)


@pytest.fixture(scope="module")
def ni_signal():
    """The same master as kikuchipy loads it (a float32 signal), for kikuchipy's projection."""
    kp = kikuchipy_or_skip()
    mp = kp.load(emsoft_ni_master_file(), projection="lambert", hemisphere="both", energy=20)
    mp.change_dtype("float32")
    return mp


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.reshape(len(a), -1) - a.reshape(len(a), -1).mean(1, keepdims=True)
    b = b.reshape(len(b), -1) - b.reshape(len(b), -1).mean(1, keepdims=True)
    return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))


@pytest.mark.parametrize("backend", ["fused", "torch"])
def test_agrees_with_kikuchipy_get_patterns(ni_signal, backend):
    from orix.quaternion import Rotation

    quats = sample_so3(100, seed=7)
    master = torch.as_tensor(np.asarray(ni_signal.data))[None]
    for pc in [(0.5, 0.5, 0.5), (0.42, 0.3, 0.65), (0.55, 0.6, 0.45)]:
        for tilt in (0.0, 13.7):
            det = Detector(shape=(48, 64), pc=pc, tilt_deg=tilt)
            ref = ni_signal.get_patterns(
                Rotation(quats), det.to_kikuchipy(), energy=20, compute=True, show_progressbar=False
            ).data
            ours = Projector(det, backend=backend)(master, np.zeros(100, int), quats).numpy()
            r = _pearson(ref.astype(np.float64), ours.astype(np.float64))
            assert r.min() >= 0.999, (pc, tilt, r.min())


def test_fused_and_torch_backends_match(ni_master):
    master = torch.as_tensor(ni_master)[None]
    det = Detector.paper(shape=(40, 40))
    q = sample_so3(6, seed=3)
    a = Projector(det, backend="fused")(master, np.zeros(6, int), q)
    b = Projector(det, backend="torch")(master, np.zeros(6, int), q)
    assert torch.allclose(a, b, rtol=1e-3, atol=1e-2 * float(master.max()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_projection_matches_the_cpu_kernel(ni_master):
    master = torch.as_tensor(ni_master)[None]
    det = Detector.paper(shape=(60, 60))
    q = sample_so3(16, seed=5)
    cpu = Projector(det, backend="fused")(master, np.zeros(16, int), q)
    gpu = Projector(det, device="cuda")(master.cuda(), np.zeros(16, int), q)
    assert gpu.device.type == "cuda"
    r = _pearson(cpu.numpy().reshape(16, -1), gpu.cpu().numpy().reshape(16, -1))
    assert r.min() >= 0.9999


def test_mixed_material_batch_reads_each_samples_own_master(ni_master):
    base = torch.as_tensor(ni_master)
    masters = torch.stack([base, base.flip(-1), 2.0 * base])
    det = Detector(shape=(32, 32), pc=(0.5, 0.45, 0.6))
    q = sample_so3(9, seed=11)
    index = np.array([0, 1, 2, 2, 1, 0, 1, 2, 0])
    batch = Projector(det)(masters, index, q)
    for i, m in enumerate(index):
        alone = Projector(det)(masters[m : m + 1], np.zeros(1, int), q[i : i + 1])[0]
        assert torch.allclose(batch[i], alone)
    with pytest.raises(ProjectionError, match="material_index"):
        Projector(det)(masters, np.array([3]), q[:1])


def test_energy_weighting_is_the_yield_weighted_mean(ni_master):
    north_south = ni_master
    planes = np.stack([north_south, north_south[:, ::-1].copy(), 0.5 * north_south])
    weights = np.array([1.0, 3.0, 2.0])
    reduced = energy_reduced_master(planes, weights, [10.0, 15.0, 20.0], "weighted")
    expected = (planes * weights[:, None, None, None]).sum(0) / weights.sum()
    np.testing.assert_allclose(reduced, expected, rtol=1e-5)
    # projection is linear in the master, so weighting before projecting equals weighting after
    det = Detector(shape=(24, 24))
    q = sample_so3(4, seed=2)
    proj = Projector(det)
    each = [proj(torch.as_tensor(p.copy())[None], np.zeros(4, int), q) for p in planes]
    after = sum(w * e for w, e in zip(weights, each, strict=True)) / weights.sum()
    before = proj(torch.as_tensor(reduced)[None], np.zeros(4, int), q)
    assert torch.allclose(before, after, rtol=1e-4, atol=1e-3)
    single = energy_reduced_master(planes, weights, [10.0, 15.0, 20.0], 15.0)
    np.testing.assert_array_equal(single, planes[1])
    with pytest.raises(ProjectionError, match="12.5 keV"):
        energy_reduced_master(planes, weights, [10.0, 15.0, 20.0], 12.5)


@pytest.mark.parametrize("convention", ["tsl", "oxford", "emsoft"])
def test_pc_conventions_match_kikuchipy(convention):
    kikuchipy_or_skip()
    det = Detector(shape=(60, 80), pc=(0.43, 0.31, 0.62), px_size_um=55.0, binning=4)
    kdet = det.to_kikuchipy()
    ours = np.array(det.pc_as(convention))
    theirs = {
        "tsl": kdet.pc_tsl(),
        "oxford": kdet.pc_oxford(),
        "emsoft": kdet.pc_emsoft(),
    }[convention].ravel()
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    back = Detector.from_pc(tuple(ours), convention, shape=(60, 80), px_size_um=55.0, binning=4)
    np.testing.assert_allclose(back.pc, det.pc, rtol=1e-10)
    with pytest.raises(DetectorError, match="not one of"):
        det.pc_as("vendor-x")


def test_paper_preset_distance_and_tilt():
    det = Detector.paper(shape=(229, 229))
    assert det.distance_um == pytest.approx(19100.0)
    assert det.tilt_deg == pytest.approx(13.7)
    xpc, ypc, dist = det.pc_as("emsoft")
    assert ypc * det.px_size_um == pytest.approx(171.0)  # PC 171 um above the screen centre
    assert xpc == pytest.approx(0.0)
    assert dist == pytest.approx(19100.0)


def test_orientations_are_uniform_and_seeded():
    q = sample_so3(40000, seed=5)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, rtol=1e-12)
    assert (q[:, 0] >= 0).all()
    # Haar measure: the rotation angle has density (1 - cos w) / pi on [0, pi]
    angle = 2 * np.arccos(np.clip(q[:, 0], -1, 1))
    hist, edges = np.histogram(angle, bins=12, range=(0, np.pi))
    centres = (edges[:-1] + edges[1:]) / 2
    expected = (1 - np.cos(centres)) / np.pi * (edges[1] - edges[0]) * len(q)
    assert np.abs(hist - expected).max() < 5 * np.sqrt(expected.max())
    np.testing.assert_array_equal(sample_so3(10, seed=5), sample_so3(10, seed=5))
    assert not np.allclose(sample_so3(10, seed=6), sample_so3(10, seed=5))


def test_fundamental_zone_reduction_keeps_orientation_class():
    from orix.quaternion import Orientation
    from orix.quaternion.symmetry import Oh

    q = sample_so3(200, seed=1)
    fz = reduce_to_fundamental_zone(q, 225)
    ori = Orientation(fz, symmetry=Oh.laue_proper_subgroup)
    # same orientation up to symmetry: misorientation angle ~ 0
    mis = (Orientation(q, symmetry=Oh.laue_proper_subgroup) - ori).map_into_symmetry_reduced_zone()
    assert np.degrees(mis.angle).max() < 1e-4
    # reduced rotations are no larger than the cubic fundamental zone allows (62.8 deg)
    assert np.degrees(2 * np.arccos(fz[:, 0])).max() < 62.81
