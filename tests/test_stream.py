"""The pattern stream on a real lake (memory and loopback S3), sampling, and Ray workers."""

from __future__ import annotations

import pickle
from collections import Counter

import numpy as np
import pytest
import torch

from simulate.validation import emsoft_ni_master_file
from train.patterns.augment import AugmentConfig
from train.patterns.detector import Detector
from train.patterns.preprocess import PreprocessConfig, preprocess
from train.patterns.sampling import balanced_indices, grouped_folds
from train.patterns.stream import PatternStream, StreamConfig, StreamError

NI_MASTER = emsoft_ni_master_file()
# three materials of class 225, one of class 229: balance must still give ~50/50
LABELS = {"t-0": 225, "t-1": 225, "t-2": 225, "t-3": 229}


def _ni_planes() -> np.ndarray:
    import h5py

    with h5py.File(NI_MASTER) as f:
        north = f["EMData/EBSDmaster/mLPNH"][0, 0].astype(np.float32)
        south = f["EMData/EBSDmaster/mLPSH"][0, 0].astype(np.float32)
    return np.stack([north, south])[:, ::4, ::4].copy()  # 101 x 101, EMsoft npx = 50


def _fill(url: str, options: dict) -> list[str]:
    """Material k: Ni planes scaled by (k + 1), so raw intensity identifies the material."""
    from lake import Lake

    lk = Lake.open(url, storage_options=options, create=True)
    ni = _ni_planes()
    for k, (mid, label) in enumerate(LABELS.items()):
        lk.put_structure(
            mid, cif="data_test", attrs={"formula": "Ni", "disordered_spacegroup_number": label}
        )
        planes = np.stack([ni * (k + 1), ni.transpose(0, 2, 1) * (k + 1)]).astype(np.float32)
        lk.write_master(
            mid,
            "default",
            planes,
            energies_kev=[15.0, 20.0],
            weights=[1.0, 3.0],
            attrs={"engine": "test"},
        )
    return list(LABELS)


def _cfg(**changes) -> StreamConfig:
    base = dict(
        detector=Detector.paper(shape=(32, 32)), image_size=32, batch_size=8, preprocess=None
    )
    base.update(changes)
    return StreamConfig(**base)


@pytest.fixture
def filled_lake(memory_lake):
    url, options = memory_lake
    return url, options, _fill(url, options)


def _material_of(patterns: torch.Tensor) -> np.ndarray:
    """Recover k from the (k + 1) intensity scale (mean of the Ni pattern ~ const)."""
    means = patterns.mean(dim=(1, 2, 3)).numpy()
    return means / means.min()


def test_batches_shapes_labels_and_material_ids_on_s3(s3_lake_url):
    url, options = s3_lake_url
    ids = _fill(url, options)
    stream = PatternStream(url, options, ids, _cfg())
    assert stream.classes == [225, 229] and stream.num_classes == 2
    seen = 0
    for patterns, labels, mids in stream.batches(epoch=0, steps=3):
        assert patterns.shape == (8, 1, 32, 32) and patterns.dtype == torch.float32
        assert labels.dtype == torch.int64 and len(mids) == 8
        for lab, mid in zip(labels.tolist(), mids, strict=True):
            assert stream.classes[lab] == LABELS[mid]
        # the pattern really came from that material's master (intensity scale k + 1)
        scale = patterns.mean(dim=(1, 2, 3)).numpy()
        k = np.array([int(m[-1]) for m in mids])
        ratio = scale / (k + 1)
        assert ratio.max() / ratio.min() < 1.6
        seen += len(mids)
    assert seen == 24


def test_same_seed_same_batches_and_epochs_differ(filled_lake):
    url, options, ids = filled_lake
    a = [b[0] for b in PatternStream(url, options, ids, _cfg(seed=3)).batches(0, steps=2)]
    b = [b[0] for b in PatternStream(url, options, ids, _cfg(seed=3)).batches(0, steps=2)]
    c = [b[0] for b in PatternStream(url, options, ids, _cfg(seed=3)).batches(1, steps=2)]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])


def test_ranks_never_share_a_sample_within_an_epoch(filled_lake):
    url, options, ids = filled_lake
    stream = PatternStream(url, options, ids, _cfg())
    plans = [stream.plan(epoch=2, rank=r, world_size=3, steps=5) for r in range(3)]
    sample_ids = [set(p.sample_id.ravel().tolist()) for p in plans]
    assert all(len(s) == 5 * 8 for s in sample_ids)
    assert not (
        sample_ids[0] & sample_ids[1]
        or sample_ids[0] & sample_ids[2]
        or sample_ids[1] & sample_ids[2]
    )
    assert set().union(*sample_ids) == set(range(3 * 5 * 8))
    # different seeds per rank, so orientations differ too
    seeds = {int(s) for p in plans for s in p.seeds}
    assert len(seeds) == 15
    # the rank's batches are the slices its plan names
    _, _, mids = next(iter(stream.batches(epoch=2, rank=1, world_size=3, steps=1)))
    assert mids == [ids[m] for m in plans[1].material_index[0]]


def test_class_balance_over_the_label(filled_lake):
    url, options, ids = filled_lake
    stream = PatternStream(url, options, ids, _cfg(batch_size=50))
    counts = Counter(LABELS[ids[m]] for m in stream.plan(0, steps=20).material_index.ravel())
    assert abs(counts[225] - counts[229]) < 0.1 * 1000  # balanced although 3:1 materials
    uniform = PatternStream(url, options, ids, _cfg(batch_size=50, balance=False))
    counts_u = Counter(LABELS[ids[m]] for m in uniform.plan(0, steps=20).material_index.ravel())
    assert counts_u[225] > 2 * counts_u[229]
    idx = balanced_indices(["a", "a", "a", "b"], 4000, seed=1)
    assert abs(int((idx == 3).sum()) - 2000) < 150


def test_grouped_folds_hold_out_whole_materials():
    ids = [f"m{i}" for i in range(23)]
    labels = [225 if i % 3 else 229 for i in range(23)]
    folds = grouped_folds(ids, labels, k=5, seed=0)
    tests = [set(t) for _, t in folds]
    assert sum(len(t) for t in tests) == 23 and set().union(*tests) == set(ids)
    for train, test in folds:
        assert not set(train) & set(test) and set(train) | set(test) == set(ids)
        assert {lab for i, lab in zip(ids, labels, strict=True) if i in test} == {225, 229}
    assert folds == grouped_folds(ids, labels, k=5, seed=0)
    assert folds != grouped_folds(ids, labels, k=5, seed=1)


def test_augmented_stream_crops_and_is_seeded(filled_lake):
    url, options, ids = filled_lake
    aug = AugmentConfig(
        crop_size=28,
        flip_ud=True,
        flip_lr=True,
        dose_e_per_px=50.0,
        blur_sigma_px=(0.5, 1.0),
        pc_jitter=0.01,
        contrast_range=(0.8, 1.2),
        gamma_range=(0.8, 1.2),
        binning_factors=(1, 2),
    )
    cfg = _cfg(augment=aug, preprocess=PreprocessConfig())
    first = next(iter(PatternStream(url, options, ids, cfg).batches(0, steps=1)))[0]
    again = next(iter(PatternStream(url, options, ids, cfg).batches(0, steps=1)))[0]
    assert first.shape == (8, 1, 28, 28)
    assert torch.equal(first, again)
    plain = next(
        iter(
            PatternStream(url, options, ids, _cfg(preprocess=PreprocessConfig())).batches(
                0, steps=1
            )
        )
    )[0]
    assert plain.shape == (8, 1, 32, 32)
    assert torch.allclose(plain.mean(dim=(2, 3)), torch.zeros(8, 1), atol=1e-4)


def test_stream_errors_name_the_material(filled_lake):
    url, options, ids = filled_lake
    with pytest.raises(StreamError, match="t-0.*no label attribute 'nope'"):
        _ = PatternStream(url, options, ids, _cfg(label="nope")).classes
    with pytest.raises(StreamError, match="variants"):
        _ = PatternStream(url, options, ids, _cfg(variants=("b99",))).classes
    with pytest.raises(StreamError, match="scheduler"):
        _cfg(scheduler="mpi")
    with pytest.raises(StreamError, match="device='cuda'.*Dask-on-Ray"):
        _cfg(scheduler="ray", device="cuda")


def test_preprocess_background_normalise_and_mask():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:40]
    background = 100.0 + 2.0 * xx + yy  # smooth detector background
    bands = 10.0 * (np.sin(xx / 2.0) > 0.9)
    scan = np.stack([background + bands + rng.normal(0, 0.1, (40, 40)) for _ in range(6)])
    out = preprocess(
        scan, PreprocessConfig(static_background="mean", dynamic_background_sigma=None)
    )
    assert out.dtype == np.float32 and out.shape == scan.shape
    np.testing.assert_allclose(out.mean(axis=(1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(1, 2), ddof=1), 1.0, atol=1e-3)
    dyn = preprocess(background + bands, PreprocessConfig(normalize="none"))
    assert np.corrcoef(dyn.ravel(), bands.ravel())[0, 1] > 0.5  # background gone, bands kept
    masked = preprocess(scan, PreprocessConfig(circular_mask=True))
    assert (masked[:, 0, 0] == 0).all() and (masked[:, 20, 20] != 0).all()


@pytest.fixture(scope="module")
def local_ray():
    """A small local Ray runtime of its own (``address="local"``: never joins a cluster that
    another process on this machine may have started)."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_stream_pickles_into_a_ray_worker(local_ray, tmp_path):
    from lake import Lake

    url = str(tmp_path / "lake")  # memory:// is per process: use a path Ray workers can read
    _fill(url, {})
    assert Lake.open(url, mode="r").structure_ids() == sorted(LABELS)
    stream = PatternStream(url, {}, list(LABELS), _cfg())
    local = next(iter(stream.batches(0, rank=1, world_size=2, steps=1)))
    stream = pickle.loads(pickle.dumps(stream))

    @local_ray.remote
    def take(s, rank):
        patterns, labels, mids = next(iter(s.batches(0, rank=rank, world_size=2, steps=1)))
        return patterns.numpy(), labels.numpy(), mids

    remote = local_ray.get(take.remote(stream, 1))
    np.testing.assert_array_equal(remote[0], local[0].numpy())
    assert remote[2] == local[2]


def test_dask_on_ray_scheduler_renders_in_ray_tasks_and_matches_threads(local_ray, tmp_path):
    from ray.util.dask import RayDaskCallback

    class SubmittedTasks(RayDaskCallback):
        """Counts the Dask tasks the Dask-on-Ray scheduler hands to Ray (on the driver)."""

        def __init__(self) -> None:
            super().__init__()
            self.keys: list[str] = []

        def _ray_postsubmit(self, task, key, deps, object_ref) -> None:
            self.keys.append(str(key))

    url = str(tmp_path / "lake")
    _fill(url, {})
    aug = AugmentConfig(crop_size=28, flip_ud=True, flip_lr=True, binning_factors=(1, 2))
    changes = dict(augment=aug, preprocess=PreprocessConfig())
    threads = PatternStream(url, {}, list(LABELS), _cfg(scheduler="threads", **changes))
    want = list(threads.batches(epoch=1, steps=3))
    # prefetch=0 computes one batch at a time: Ray's Dask callbacks only see the outermost
    # of concurrent computes, so counting needs them sequential
    sequential = PatternStream(url, {}, list(LABELS), _cfg(scheduler="ray", prefetch=0, **changes))
    with SubmittedTasks() as submitted:
        got = list(sequential.batches(epoch=1, steps=3))
    assert sum("render_batch_array" in k for k in submitted.keys) == 3  # one Ray task a batch
    ahead = PatternStream(url, {}, list(LABELS), _cfg(scheduler="ray", prefetch=2, **changes))
    got_ahead = list(ahead.batches(epoch=1, steps=3))
    for batches in (got, got_ahead):
        for (p_ray, y_ray, m_ray), (p_thr, y_thr, m_thr) in zip(batches, want, strict=True):
            assert p_ray.shape == (8, 1, 28, 28) and p_ray.dtype == torch.float32
            assert torch.equal(p_ray, p_thr) and torch.equal(y_ray, y_thr) and m_ray == m_thr
    np.testing.assert_array_equal(
        ahead.reduced_master("t-1", "default"), threads.reduced_master("t-1", "default")
    )


def test_pattern_grid_writes_a_figure(filled_lake, tmp_path):
    from train.patterns.figures import pattern_grid

    url, options, ids = filled_lake
    out = pattern_grid(
        url, options, ids[:3], 4, tmp_path / "grid.png", detector=Detector.paper(shape=(48, 48))
    )
    import matplotlib.image

    img = matplotlib.image.imread(out)
    assert img.shape[0] > 100 and img.shape[1] > 200 and img.std() > 0.05


# ------------------------------------------------------------------ fast paths vs references
# Each fast path replaced a straightforward implementation; the reference is kept here (or in
# train.patterns.blur) and the two must agree: exactly where only the memory layout changed, and to
# float32 rounding (stated tolerances) where the arithmetic was regrouped.


def _reference_geometric(x, cfg, generator):
    """The stream's former crop-then-flip: per-pattern slices, torch.flip, torch.where."""
    n, h, w = x.shape
    if cfg.crop_size:
        s = int(cfg.crop_size)
        tops = torch.randint(h - s + 1, (n,), generator=generator)
        lefts = torch.randint(w - s + 1, (n,), generator=generator)
        x = torch.stack(
            [
                x[i, t : t + s, lf : lf + s]
                for i, (t, lf) in enumerate(zip(tops, lefts, strict=True))
            ]
        )
    if cfg.flip_ud:
        flip = torch.rand(n, generator=generator) < 0.5
        x = torch.where(flip[:, None, None], x.flip(-2), x)
    if cfg.flip_lr:
        flip = torch.rand(n, generator=generator) < 0.5
        x = torch.where(flip[:, None, None], x.flip(-1), x)
    return x


def _test_patterns(n: int = 6, shape: tuple[int, int] = (48, 48)) -> torch.Tensor:
    """Real projected Ni patterns (positive, banded), as the stream's blur sees them."""
    from train.patterns.orientations import sample_so3
    from train.patterns.projection import Projector

    master = torch.as_tensor(_ni_planes())[None]
    return Projector(Detector.paper(shape=shape))(master, np.zeros(n, int), sample_so3(n, 4))


@pytest.mark.parametrize("shape", [(48, 48), (30, 52)])
@pytest.mark.parametrize("sigma_px", [0.8, 6.0, 40.0])  # 40 px: radius clamped to the side
def test_matrix_blur_equals_padded_convolution(shape, sigma_px):
    from train.patterns.blur import gaussian_blur, gaussian_blur_reference

    x = _test_patterns(4, shape)
    fast, ref = gaussian_blur(x, sigma_px), gaussian_blur_reference(x, sigma_px)
    assert fast.shape == ref.shape == x.shape
    assert float((fast - ref).abs().max()) <= 1e-5 * float(x.abs().max())
    # the operator keeps the mean of a constant image (rows of the matrix sum to 1)
    flat = gaussian_blur(torch.full((1, *shape), 3.0), sigma_px)
    assert torch.allclose(flat, torch.full_like(flat, 3.0), atol=1e-5)


def test_grouped_augmentations_equal_per_pattern_reference():
    from train.patterns.augment import _bin
    from train.patterns.blur import gaussian_blur_each, gaussian_blur_reference

    x = _test_patterns(5, (40, 40))
    sigmas = torch.tensor([0.5, 1.7, 0.0, 3.2, 1.0])
    each = gaussian_blur_each(x, sigmas)
    for i, s in enumerate(sigmas.tolist()):
        ref = gaussian_blur_reference(x[i : i + 1], s)[0]
        assert float((each[i] - ref).abs().max()) <= 1e-5 * float(x.abs().max()), s
    # grouped binning == binning one pattern at a time with the same drawn factors
    cfg = AugmentConfig(binning_factors=(1, 2, 4))
    from train.patterns.augment import degrade

    out = degrade(x, cfg, torch.Generator().manual_seed(9))
    pick = torch.randint(3, (5,), generator=torch.Generator().manual_seed(9))
    ref = torch.stack(
        [_bin(x[i : i + 1], cfg.binning_factors[int(k)])[0] for i, k in enumerate(pick)]
    )
    assert len(set(pick.tolist())) > 1 and torch.equal(out, ref)


@pytest.mark.parametrize(
    "cfg",
    [
        AugmentConfig.paper(),
        AugmentConfig(crop_size=30),
        AugmentConfig(flip_ud=True),
        AugmentConfig(crop_size=33, flip_lr=True),
    ],
)
def test_crop_and_flip_copies_equal_reference(cfg):
    from train.patterns.augment import _windows_cpu, _windows_gather, geometric

    x = torch.randn(16, 36, 36) if cfg.crop_size != 224 else torch.randn(8, 229, 229)
    ref = _reference_geometric(x, cfg, torch.Generator().manual_seed(5))
    assert torch.equal(geometric(x, cfg, torch.Generator().manual_seed(5)), ref)
    # the gather used on GPUs gives the same windows as the CPU strided copies
    n = x.shape[0]
    tops, lefts = torch.randint(3, (n,)), torch.randint(3, (n,))
    ud, lr = torch.rand(n) < 0.5, torch.rand(n) < 0.5
    size = (x.shape[1] - 2, x.shape[2] - 2)
    assert torch.equal(
        _windows_cpu(x, size, tops, lefts, ud, lr), _windows_gather(x, size, tops, lefts, ud, lr)
    )


@pytest.mark.parametrize("operation", ["divide", "subtract"])
@pytest.mark.parametrize("normalize", ["zscore", "minmax", "none"])
def test_fused_background_and_normalisation_equal_tensor_ops(operation, normalize):
    from train.patterns.preprocess import preprocess_tensor

    x = _test_patterns(6, (44, 44))
    cfg = PreprocessConfig(dynamic_operation=operation, normalize=normalize, circular_mask=True)
    fused = preprocess_tensor(x, cfg)
    tensor_ops = preprocess_tensor(x, cfg, cpu_kernel=False)
    scale = float(tensor_ops.abs().max())
    assert float((fused - tensor_ops).abs().max()) <= 1e-5 * scale
    if normalize == "zscore":
        inside = fused[:, 22, 22]
        assert inside.abs().max() > 0.01  # not all zeros: the mask keeps the centre
