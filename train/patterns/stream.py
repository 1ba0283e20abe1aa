"""An endless, reproducible stream of projected patterns from the lake, for Ray Train workers.

Dask reads each master lazily from the lake (``Lake.master(..., lazy=True)``), reduces its
energies once (Monte Carlo yield weighting or one plane) and keeps the result in memory (a
tensor on ``device``, or an object in Ray's store for Dask-on-Ray); each batch is one Dask task
that projects a mixed-material batch of random orientations, degrades, pre-processes and
augments it, every step on the whole batch. ``prefetch`` batches are in flight at most, which
bounds memory.

Scheduler choice (measured in docs/STREAM.md): ``"threads"`` (default) runs the tasks on Dask's
threaded scheduler inside the training worker (the kernels release the GIL, so the threads
overlap with training and no pattern crosses a process boundary); ``"ray"`` runs them as Ray
tasks through Dask-on-Ray (about half the rate on one node: each batch goes through the object
store); ``"sync"`` runs them inline in the prefetch threads (debugging). ``device="cuda"``
projects on the worker's GPU instead.

The settings live in :mod:`train.patterns.stream_config` and the body of each batch task in
:mod:`train.patterns.batches`; both are re-exported here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import dask
import numpy as np
import torch

from lake import canonical_url
from train.patterns.batches import BatchSpec, render_batch, render_batch_array
from train.patterns.errors import one_line
from train.patterns.materials import MaterialError, available_variants, material_labels
from train.patterns.projection import Projector, energy_reduced_master
from train.patterns.sampling import EpochPlan, epoch_plan
from train.patterns.stream_config import SCHEDULERS, StreamConfig, StreamError

__all__ = [
    "SCHEDULERS",
    "BatchSpec",
    "PatternStream",
    "StreamConfig",
    "StreamError",
    "render_batch",
    "render_batch_array",
]


class PatternStream:
    """Batches of (patterns, labels, material ids) projected on the fly from the lake.

    Parameters
    ----------
    lake_url, storage_options
        Where the lake is (any fsspec URL) and how to reach it.
    material_ids
        Materials to draw from (e.g. one fold's training ids).
    cfg
        Stream settings.

    The object is cheap to pickle: the lake is opened lazily in the process that iterates, so it
    can be built on the driver and iterated inside a Ray Train worker.
    """

    def __init__(
        self,
        lake_url: str,
        storage_options: dict[str, Any] | None,
        material_ids: Sequence[str],
        cfg: StreamConfig | None = None,
    ) -> None:
        ids = [str(m) for m in material_ids]
        if not ids:
            raise StreamError(f"{lake_url}: the stream needs at least one material id")
        if len(set(ids)) != len(ids):
            raise StreamError(f"{lake_url}: material_ids contain duplicates")
        self.lake_url = canonical_url(lake_url)
        self.storage_options = dict(storage_options or {})
        self.material_ids = ids
        self.cfg = cfg or StreamConfig()
        self._reset_process_state()

    # ---------------------------------------------------------------- pickling

    def _reset_process_state(self) -> None:
        self._lake: Any = None
        self._index: tuple[list[Any], list[list[str]]] | None = None
        self._masters: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._master_sizes: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._projector: Projector | None = None
        self._projector_in_store: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {
            "lake_url": self.lake_url,
            "storage_options": self.storage_options,
            "material_ids": self.material_ids,
            "cfg": self.cfg,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset_process_state()

    # ---------------------------------------------------------------- catalogue

    def _open_lake(self) -> Any:
        if self._lake is None:
            from lake import Lake

            self._lake = Lake.open(self.lake_url, storage_options=self.storage_options, mode="r")
        return self._lake

    def _material_index(self) -> tuple[list[Any], list[list[str]]]:
        """Label and available variants of each material, read once from the lake
        (``train.patterns.materials``: one owner of labels and availability)."""
        if self._index is None:
            lk = self._open_lake()
            try:
                labels = material_labels(lk, self.material_ids, self.cfg.label)
            except MaterialError as exc:
                raise StreamError(f"{self.lake_url}: {exc}") from None
            variants = []
            for mid in self.material_ids:
                have = available_variants(lk, mid, self.cfg.variants)
                if not have:
                    raise StreamError(
                        f"{self.lake_url}: material {mid!r} has no complete master among "
                        f"variants {list(self.cfg.variants)}"
                    )
                variants.append(have)
            self._index = (labels, variants)
        return self._index

    @property
    def labels(self) -> list[Any]:
        """Label value of each material, in ``material_ids`` order."""
        return list(self._material_index()[0])

    @property
    def classes(self) -> list[Any]:
        """Sorted distinct label values of the stream's materials."""
        return sorted(set(self.labels), key=lambda v: (type(v).__name__, v))

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    # ---------------------------------------------------------------- planning

    def plan(self, epoch: int, rank: int = 0, world_size: int = 1, steps: int = 1) -> EpochPlan:
        """This rank's share of an epoch (material per sample, sample ids, batch seeds)."""
        return epoch_plan(
            self.labels,
            batch_size=self.cfg.batch_size,
            steps=steps,
            epoch=epoch,
            rank=rank,
            world_size=world_size,
            seed=self.cfg.seed,
            balance=self.cfg.balance,
        )

    # ---------------------------------------------------------------- masters

    def reduced_master(self, material_id: str, variant: str) -> np.ndarray:
        """Energy-reduced float32 (2, n, n) master, computed once per process and cached.

        The lake's arrays are read lazily through Dask on the stream's scheduler; only the
        reduction's result is kept (least recently used evicted beyond ``master_cache_mb``).
        """
        cached = self._cached_master((material_id, variant))
        if isinstance(cached, torch.Tensor):
            return cached.cpu().numpy()
        import ray

        return np.asarray(ray.get(cached))

    def _cached_master(self, key: tuple[str, str]) -> Any:
        """What a batch task receives for one master: a tensor on ``cfg.device`` (threads,
        sync), or a Ray object reference (ray: put into the object store once, not shipped
        with every task)."""
        with self._lock:
            if key in self._masters:
                self._masters.move_to_end(key)
                return self._masters[key]
        plane_set = self._read_reduced(key)
        if self.cfg.scheduler == "ray":
            import ray

            entry: Any = ray.put(plane_set)
        else:
            entry = torch.from_numpy(plane_set).to(self.cfg.device)
        with self._lock:
            self._masters[key] = entry
            self._master_sizes[key] = plane_set.nbytes
            budget = self.cfg.master_cache_mb * 2**20
            while sum(self._master_sizes.values()) > budget and len(self._masters) > 1:
                old, _ = self._masters.popitem(last=False)
                del self._master_sizes[old]
        return entry

    def _read_reduced(self, key: tuple[str, str]) -> np.ndarray:
        """Read one master from the lake and reduce its energies: float32 (2, n, n).

        A master whose chunks cannot be decoded (a corrupt or truncated chunk) is a
        :class:`StreamError` naming the material and variant, not a codec's bare message.
        """
        from lake import LakeError

        lk = self._open_lake()
        lazy = lk.master(*key, lazy=True)
        weights = lk.weights(*key).values
        reduced = energy_reduced_master(lazy.data, weights, lazy["energy"].values, self.cfg.energy)
        # Read and reduced here with Dask threads for every scheduler: the lazy array wraps a
        # zarr Array, which zarr 3.1.6 cannot unpickle in another process (ArrayV3Metadata
        # rejects its own ``zarr_format`` field), and the result is needed here anyway.
        scheduler = "sync" if self.cfg.scheduler == "sync" else "threads"
        try:
            (plane_set,) = dask.compute(reduced, scheduler=scheduler)
        except (LakeError, MemoryError):
            raise
        except Exception as exc:  # codecs raise their own types (zstd, blosc, numcodecs...)
            raise StreamError(
                f"{self.lake_url}: master {key[0]!r} variant {key[1]!r} cannot be read "
                f"({one_line(exc)}); run `ebsdlake lake verify` to find corrupt chunks"
            ) from exc
        return np.ascontiguousarray(plane_set, dtype=np.float32)

    def _dask_scheduler(self) -> Any:
        if self.cfg.scheduler == "ray":
            from ray.util.dask import ray_dask_get

            return ray_dask_get
        return "sync" if self.cfg.scheduler == "sync" else "threads"

    # ---------------------------------------------------------------- batches

    def batch_task(self, epoch_plan_: EpochPlan, step: int, rank: int) -> tuple[Any, list[str]]:
        """The Dask task of one batch and its material ids (public for tests and benchmarks).

        One ``dask.delayed(render_batch)`` per batch. Its inputs are in-memory tensors for the
        threads and sync schedulers; for Dask-on-Ray they are graph keys holding object
        references (masters, projector), which Ray resolves in the worker from its object store.
        """
        labels, variants = self._material_index()
        mats = epoch_plan_.material_index[step]
        seed = int(epoch_plan_.seeds[step])
        rng = np.random.default_rng(seed)
        keys = [
            (self.material_ids[m], variants[m][int(rng.integers(len(variants[m])))]) for m in mats
        ]
        unique = list(dict.fromkeys(keys))
        slots = np.array([unique.index(k) for k in keys], dtype=np.int64)
        masters = [self._cached_master(k) for k in unique]
        projector: Any = self._get_projector()
        if self.cfg.scheduler == "ray":
            masters = [_ref_node(ref, "master") for ref in masters]
            projector = _ref_node(self._projector_ref(), "projector")
        spec = BatchSpec(material_slot=slots, seed=seed, config=self.cfg)
        render = render_batch_array if self.cfg.scheduler == "ray" else render_batch
        task = dask.delayed(render, pure=False)(spec, projector, *masters)
        return task, [k[0] for k in keys]

    def _get_projector(self) -> Projector:
        if self._projector is None:
            self._projector = Projector(self.cfg.render_detector(), device=self.cfg.device)
        return self._projector

    def _projector_ref(self) -> Any:
        """The projector in Ray's object store (put once per process)."""
        if self._projector_in_store is None:
            import ray

            self._projector_in_store = ray.put(self._get_projector())
        return self._projector_in_store

    def batches(
        self,
        epoch: int = 0,
        rank: int = 0,
        world_size: int = 1,
        steps: int = 100,
        plan: EpochPlan | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, list[str]]]:
        """Yield ``steps`` batches of this rank's share of ``epoch``, or the batches of an
        explicit ``plan`` (e.g. :func:`train.patterns.sampling.material_plan`, exactly N
        patterns per material for evaluation; ``epoch``, ``world_size`` and ``steps`` are then
        unused).

        Yields
        ------
        patterns
            float32 (B, 1, S, S), S = :attr:`StreamConfig.output_size`, on ``cfg.device``.
        labels
            int64 (B,) indices into :attr:`classes`.
        material_ids
            The material of each pattern.
        """
        if plan is None:
            plan = self.plan(epoch, rank, world_size, steps)
        steps = len(plan.material_index)
        class_of = {c: i for i, c in enumerate(self.classes)}
        labels = self.labels
        scheduler = self._dask_scheduler()
        ahead: deque[tuple[Future, torch.Tensor, list[str]]] = deque()
        with ThreadPoolExecutor(max_workers=max(1, self.cfg.prefetch)) as pool:
            for step in range(steps):
                task, mids = self.batch_task(plan, step, rank)
                idx = plan.material_index[step]
                y = torch.as_tensor([class_of[labels[m]] for m in idx], dtype=torch.int64)
                ahead.append((pool.submit(dask.compute, task, scheduler=scheduler), y, mids))
                if len(ahead) > self.cfg.prefetch:
                    yield _finish(ahead.popleft(), self.cfg.device)
            while ahead:
                yield _finish(ahead.popleft(), self.cfg.device)


def _ref_node(ref: Any, kind: str) -> Any:
    """A Dask graph node holding a Ray object reference, so Dask-on-Ray passes it to the task
    as a dependency (resolved by Ray in the worker) instead of pickling a copy into the task."""
    return dask.delayed(ref, name=f"{kind}-{ref.hex()}", pure=True)


def _finish(
    item: tuple[Future, torch.Tensor, list[str]], device: str
) -> tuple[torch.Tensor, Any, list[str]]:
    future, labels, mids = item
    (patterns,) = future.result()
    if isinstance(patterns, np.ndarray):  # from Ray's object store: read-only, so copy
        patterns = torch.tensor(patterns, device=device)
    return patterns, labels.to(patterns.device), mids
