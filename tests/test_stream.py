"""The pattern stream on a real lake (memory and loopback S3), sampling, and Ray workers."""

from __future__ import annotations

import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from train.augment import AugmentConfig
from train.detector import Detector
from train.preprocess import PreprocessConfig, preprocess
from train.sampling import balanced_indices, grouped_folds
from train.stream import PatternStream, StreamConfig, StreamError

kp = pytest.importorskip("kikuchipy")
NI_MASTER = (
    Path(kp.__file__).parent / "data/emsoft_ebsd_master_pattern/ni_mc_mp_20kv_uint8_gzip_opts9.h5"
)
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

    lk = Lake.open(url, storage_options=options)
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
    with pytest.raises(StreamError, match="t-0.*no label 'nope'"):
        _ = PatternStream(url, options, ids, _cfg(label="nope")).classes
    with pytest.raises(StreamError, match="variants"):
        _ = PatternStream(url, options, ids, _cfg(variants=("b99",))).classes
    with pytest.raises(StreamError, match="scheduler"):
        _cfg(scheduler="mpi")


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


def test_stream_pickles_into_a_ray_worker(filled_lake, tmp_path):
    ray = pytest.importorskip("ray")
    from lake import Lake

    url = str(tmp_path / "lake")  # memory:// is per process: use a path Ray workers can read
    _fill(url, {})
    assert Lake.open(url, mode="r").structure_ids() == sorted(LABELS)
    stream = PatternStream(url, {}, list(LABELS), _cfg())
    local = next(iter(stream.batches(0, rank=1, world_size=2, steps=1)))
    stream = pickle.loads(pickle.dumps(stream))

    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    try:

        @ray.remote
        def take(s, rank):
            patterns, labels, mids = next(iter(s.batches(0, rank=rank, world_size=2, steps=1)))
            return patterns.numpy(), labels.numpy(), mids

        remote = ray.get(take.remote(stream, 1))
    finally:
        ray.shutdown()
    np.testing.assert_array_equal(remote[0], local[0].numpy())
    assert remote[2] == local[2]


def test_pattern_grid_writes_a_figure(filled_lake, tmp_path):
    from train.figures import pattern_grid

    url, options, ids = filled_lake
    out = pattern_grid(
        url, options, ids[:3], 4, tmp_path / "grid.png", detector=Detector.paper(shape=(48, 48))
    )
    import matplotlib.image

    img = matplotlib.image.imread(out)
    assert img.shape[0] > 100 and img.shape[1] > 200 and img.std() > 0.05
