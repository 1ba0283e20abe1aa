"""The dynamical engine: de-ebsd's Monte Carlo and Bloch-wave master pattern (CPU or CUDA).

Per job: build the crystal with de-ebsd's own :class:`~de_ebsd.Crystal` (the record's
setting and per-site B), run de-ebsd's native Monte Carlo once for the energy histogram and
exit-depth profile (or read an EMsoft one), then compute one Lambert master per energy bin
with the batched Bloch-wave backend, folding directions by symmetry only where de-ebsd's fold
is exact for the crystal (:mod:`simulate.symmetry`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from simulate.bloch_memory import beam_counts, memory_budget_bytes, plan_batches, sample_directions
from simulate.engine_base import MasterResult, ProgressCallback, bfactor_attrs
from simulate.errors import EmsoftFileError, EngineUnavailableError, SimulateInputError
from simulate.settings import SimulationSettings
from simulate.structure import StructureLike, as_record, build_crystal, site_bfactors
from simulate.symmetry import fold_is_consistent

#: Electrons advanced in lockstep per Monte Carlo batch (bounds memory: ~100 bytes each).
MC_BATCH_ELECTRONS = 1_000_000


def resolve_device(name: str):
    """The torch device for a settings ``device`` string (``"auto"``: CUDA when present)."""
    import torch

    if name in ("auto", "", None):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SimulateInputError(f"setting device={name!r}: not a torch device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EngineUnavailableError(
            f"device {name!r}: torch sees no CUDA device here; use --device cpu or auto"
        )
    return device


def monte_carlo(crystal, settings: SimulationSettings, device) -> tuple[Any, float]:
    """Exit-depth/energy statistics for ``crystal`` as a de-ebsd ``DepthDistribution``.

    Uses the EMsoft Monte Carlo file ``settings.mc_file`` when given (counted over the
    electrons EMsoft ran: :func:`simulate.emsoft_io.read_depth_distribution`), otherwise de-ebsd's
    native Monte Carlo with ``settings.mc_electrons`` electrons in batches of
    :data:`MC_BATCH_ELECTRONS` (seeds ``mc_seed``, ``mc_seed + 1``...), binned from
    ``energy_min_kev`` to the beam energy in ``energy_step_kev`` bins (EMsoft's ``Ehistmin``
    convention) and cut to ``energy_max_kev``.

    Returns
    -------
    (DepthDistribution, seconds)
    """
    from de_ebsd import DepthDistribution

    started = time.perf_counter()
    if settings.mc_file:
        from simulate.emsoft_io import read_depth_distribution

        try:
            depth = read_depth_distribution(settings.mc_file)
        except EmsoftFileError as exc:
            raise SimulateInputError(f"mc_file {exc}") from None
        except (OSError, KeyError) as exc:
            raise SimulateInputError(
                f"mc_file {settings.mc_file}: not an EMsoft Monte Carlo file ({exc})"
            ) from None
        return depth, time.perf_counter() - started

    step = settings.energy_step_kev
    # A histogram whose lowest bin is the beam energy would also cut electrons off there and
    # count none; then bin one step lower and drop that bin (EMsoft uses EkeV > Ehistmin).
    extra_bin = settings.energy_min_kev > settings.voltage_kv - step
    e_min = settings.energy_min_kev - (step if extra_bin else 0.0)
    total = int(settings.mc_electrons)
    accum, counted = None, 0.0
    for batch, start in enumerate(range(0, total, MC_BATCH_ELECTRONS)):
        n = min(MC_BATCH_ELECTRONS, total - start)
        part = DepthDistribution.from_simulation(
            crystal,
            float(settings.voltage_kv),
            e_min_kev=float(e_min),
            e_bin_kev=float(step),
            depth_step_nm=float(settings.depth_step_nm),
            depth_max_nm=float(settings.depth_max_nm),
            n_electrons=n,
            tilt_deg=float(settings.sample_tilt_deg),
            device=device,
            seed=int(settings.mc_seed) + batch,
        )
        accum = part.accum_z if accum is None else accum + part.accum_z
        counted += part.n_total
        energies = part.energies_kev
    first = 1 if extra_bin else 0
    keep = np.flatnonzero(
        (np.arange(len(energies)) >= first) & (energies <= settings.energy_max_kev + 1e-9)
    )
    depth = DepthDistribution(
        energies_kev=np.asarray(energies[keep], dtype=np.float64),
        depth_step=float(settings.depth_step_nm),
        accum_z=np.ascontiguousarray(accum[keep]),
        n_total=float(counted),
    )
    return depth, time.perf_counter() - started


def energy_weights(depth) -> np.ndarray:
    """Backscatter yield per energy bin: backscattered electrons in the bin / incident."""
    return depth.accum_z.sum(axis=(1, 2, 3)) / float(depth.n_total)


def bethe_parameters(settings: SimulationSettings):
    """de-ebsd's Bethe thresholds (strong, weak, cutoff, s_g doubling in 1/nm) from ``settings``."""
    from de_ebsd import BetheParameters

    return BetheParameters(
        strong=settings.bethe_strong,
        weak=settings.bethe_weak,
        cutoff=settings.bethe_cutoff,
        sg_double=settings.bethe_sg_double_nm_inv,
    )


class DynamicalEngine:
    """de-ebsd master patterns; one instance per actor, reused for every job."""

    name = "dynamical"

    def version(self) -> str:
        """``"de-ebsd <version>"``."""
        import de_ebsd

        return f"de-ebsd {de_ebsd.__version__}"

    def check_available(self, settings: SimulationSettings) -> None:
        """Raise :class:`EngineUnavailableError` if the requested device is absent."""
        resolve_device(settings.device)

    def warm_up(self, device: str = "cpu") -> float:
        """Run one tiny master so imports and JIT compilation (orix, numba) happen now.

        An actor calls this once when it starts, so the first real job's time limit measures
        that job only. Returns the seconds it took.
        """
        from simulate.reference_structures import reference_structure

        started = time.perf_counter()
        tiny = SimulationSettings(
            npx=2,
            dmin_nm=0.3,
            energy_min_kev=20.0,
            energy_max_kev=20.0,
            mc_electrons=200,
            bethe_strong=4.0,
            bethe_weak=8.0,
            bethe_cutoff=50.0,
            device=device,
        )
        self.run(reference_structure("Ni"), tiny)
        return time.perf_counter() - started

    def run(
        self,
        structure: StructureLike,
        settings: SimulationSettings,
        bfactors_nm2: Sequence[float] | None = None,
        progress: ProgressCallback | None = None,
    ) -> MasterResult:
        """Simulate the energy-resolved master of one structure under one B-factor set.

        Parameters
        ----------
        structure
            A :class:`lake.StructureRecord` or its flat attributes
            (see :func:`simulate.structure.build_crystal`).
        settings
            Beam, grid, reflection and Monte Carlo settings.
        bfactors_nm2
            Per-site Debye-Waller B (nm^2); ``None`` uses the record's own.
        progress
            ``progress(done, total)`` over direction batches and energies.
        """
        import de_ebsd
        import torch
        from de_ebsd import BlochPrismBackend, MasterPatternSimulator, Microscope

        started = time.perf_counter()
        record = as_record(structure)
        bfactors = list(bfactors_nm2) if bfactors_nm2 is not None else site_bfactors(record)
        crystal = build_crystal(record, bfactors)
        device = resolve_device(settings.device)
        depth, mc_seconds = monte_carlo(crystal, settings, device)
        if depth.accum_z.sum() <= 0:
            raise SimulateInputError(
                f"{record.name}: the Monte Carlo counted no backscattered "
                f"electrons in {settings.energy_min_kev}-{settings.energy_max_kev} keV; "
                "raise mc_electrons or widen the energies"
            )
        fold = fold_is_consistent(crystal)
        cdtype = torch.complex128 if settings.precision == "double" else torch.complex64
        backend = BlochPrismBackend(cdtype=cdtype)
        simulator = MasterPatternSimulator(
            crystal,
            Microscope(energy=settings.voltage_kv * 1e3, sample_tilt=settings.sample_tilt_deg),
            npx=int(settings.npx),
            dmin=float(settings.dmin_nm),
            bethe=bethe_parameters(settings),
            monte_carlo=depth,
            backend=backend,
        )
        plan = plan_batches(
            beam_counts(simulator, sample_directions()),
            memory_budget_bytes(),
            complex_bytes=16 if settings.precision == "double" else 8,
        )
        plan.apply(backend)
        pattern = simulator.compute(
            device=device, energy_resolved=True, symmetry=fold, progress=progress
        )
        master = pattern.data.detach().to("cpu").numpy().astype(np.float32)
        energies = np.asarray(pattern.energies_kev, dtype=np.float64)
        weights = energy_weights(depth)
        attrs = {
            **settings.to_attrs(),
            "engine": self.name,
            "engine_version": f"de-ebsd {de_ebsd.__version__}",
            "backend": "bloch_prism",
            "device": str(device),
            "symmetry_fold": bool(fold),
            "spacegroup_number": int(crystal.space_group),
            "origin_choice": record.origin_choice,
            "bfactors_nm2": bfactor_attrs(record, bfactors),
            "mc_source": settings.mc_file or "de-ebsd native",
            "mc_backscatter_yield": float(weights.sum()),
            "mc_wall_time_s": round(mc_seconds, 3),
            "bloch_batches": [plan.class_chunk, plan.block, plan.matmul_batch],
            "bloch_peak_estimate_bytes": plan.peak_bytes,
            "wall_time_s": round(time.perf_counter() - started, 3),
        }
        return MasterResult(master=master, energies_kev=energies, weights=weights, attrs=attrs)
