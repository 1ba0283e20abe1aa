"""GPU seconds per material at the paper's settings, and projected GPU-hours for the paper's
5,148-structure cubic set. Stage ``engine`` of ``devtools/gpu_kit/session.sh``; on its own::

    python3 devtools/gpu_kit/bench_engine.py --device cuda --total-s 180 --out gpu_engine.json

``--total-s`` is the whole run's time: each material gets an equal share of what is left when
it starts (its Monte Carlo included), and the JSON is rewritten after every material, so a run
stopped by the session's stage limit keeps the materials it finished. ``--budget-s`` caps a
material's share (default 75 s).

Times the dynamical engine (de-ebsd Monte Carlo + 11 energy-resolved Bloch-wave masters,
20 keV, 10-20 keV, npx 300, dmin 0.05 nm, Bethe 8/50/100) for fcc Ni, diamond Si, A15 Cr3Si
and the 160-atom garnet Y3Al5O12 (Ia-3d). A material whose full run would not fit in its time
budget is timed on the top energy (20 keV, the most beams) and on as many direction batches
as fit, then extrapolated (``extrapolated: true`` in the output).

Projection. The paper simulated MP structures below a volume cap per space group: 250 A^3
for Pm-3m, Pm-3n, Fm-3m, Im-3m; 500 A^3 for Fd-3m; 2000 A^3 for Ia-3d. We fit
``seconds = c * V^p`` (cell volume V) through the timed materials and assume the 5,148
structures are spread uniformly in volume up to each cap with the counts in ``ASSUMED_MIX``
(our estimate; the paper gives only the total). The B-factor re-simulation of all but Ia-3d
doubles those groups (reported separately).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from simulate.engine_dynamical import bethe_parameters, monte_carlo, resolve_device
from simulate.reference_structures import reference_structure
from simulate.settings import SimulationSettings
from simulate.structure import build_crystal

MATERIALS = ["Ni", "Si", "Cr3Si", "Y3Al5O12"]
MIN_SHARE_S = 2.0
"""A material left with less time than this (seconds) is skipped, not started."""
#: space group -> (assumed structure count, volume cap in A^3, smallest volume in A^3)
ASSUMED_MIX = {
    221: (2200, 250.0, 20.0),
    223: (150, 250.0, 60.0),
    225: (1900, 250.0, 20.0),
    227: (450, 500.0, 120.0),
    229: (300, 250.0, 20.0),
    230: (148, 2000.0, 900.0),
}


class _Budget(Exception):
    """Raised from the progress callback when a material's time share is spent."""


def time_material(name: str, settings: SimulationSettings, budget_s: float) -> dict:
    """Seconds for one full master (MC + all energies), extrapolated past ``budget_s`` of wall
    time (counted from the start, the Monte Carlo included)."""
    import torch
    from de_ebsd import BlochPrismBackend, MasterPatternSimulator, Microscope

    structure = reference_structure(name)
    crystal = build_crystal(structure)
    device = resolve_device(settings.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    depth, mc_s = monte_carlo(crystal, settings, device)
    sync()
    simulator = MasterPatternSimulator(
        crystal,
        Microscope(energy=settings.voltage_kv * 1e3, sample_tilt=settings.sample_tilt_deg),
        npx=settings.npx,
        dmin=settings.dmin_nm,
        bethe=bethe_parameters(settings),
        monte_carlo=depth,
        backend=BlochPrismBackend(),
    )
    n_energies = len(depth.energies_kev)
    started = time.perf_counter()
    seen = {"done": 0, "total": 1, "t": started}

    def progress(done: int, total: int) -> None:
        sync()
        seen.update(done=done, total=total, t=time.perf_counter())
        if time.perf_counter() - t0 > budget_s:
            raise _Budget

    chunk = 16_384
    try:
        simulator.compute(device=device, energy_resolved=True, chunk_size=chunk, progress=progress)
        sync()
        master_s = time.perf_counter() - started
        extrapolated = False
    except _Budget:
        rate = (seen["t"] - started) / max(seen["done"], 1)
        master_s = rate * seen["total"]
        extrapolated = True
    volume_a3 = crystal.volume * 1000.0
    return {
        "material": name,
        "spacegroup": crystal.space_group,
        "atoms": int(sum(crystal.multiplicities)),
        "volume_A3": round(volume_a3, 1),
        "energies": n_energies,
        "mc_s": round(mc_s, 2),
        "master_s": round(master_s, 2),
        "total_s": round(mc_s + master_s, 2),
        "extrapolated": extrapolated,
        "batches_timed": seen["done"],
        "batches_total": seen["total"],
        "wall_s": round(time.perf_counter() - t0, 2),
    }


def project(rows: list[dict]) -> dict:
    """GPU-hours for ASSUMED_MIX from a power-law fit of seconds vs. volume."""
    volumes = np.array([r["volume_A3"] for r in rows])
    seconds = np.array([r["total_s"] for r in rows])
    p, log_c = np.polyfit(np.log(volumes), np.log(seconds), 1)
    per_group, total_s, variants_s = {}, 0.0, 0.0
    for group, (count, cap, low) in ASSUMED_MIX.items():
        v = np.linspace(low, cap, 200)
        mean_s = float(np.mean(np.exp(log_c) * v**p))
        per_group[group] = {"count": count, "mean_s": round(mean_s, 1)}
        total_s += count * mean_s
        if group != 230:
            variants_s += count * mean_s
    return {
        "fit": {"exponent": round(float(p), 3), "coefficient": float(np.exp(log_c))},
        "per_spacegroup": per_group,
        "structures": sum(c for c, _, _ in ASSUMED_MIX.values()),
        "gpu_hours_default_variant": round(total_s / 3600, 2),
        "gpu_hours_with_b_variants": round((total_s + variants_s) / 3600, 2),
        "target_gpu_hours": 24,
    }


def device_is_cuda(name: str) -> bool:
    """Whether a torch device name is a CUDA device."""
    return name.startswith("cuda")


def main(argv: list[str] | None = None) -> int:
    """Time each material in its share of the time; write the JSON after each one."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, default=Path("gpu_engine.json"))
    parser.add_argument("--budget-s", type=float, default=75.0, help="most time per material")
    parser.add_argument("--total-s", type=float, default=None, help="time for all materials")
    parser.add_argument("--npx", type=int, default=300)
    parser.add_argument("--mc-electrons", type=int, default=2_000_000)
    parser.add_argument("--materials", default=",".join(MATERIALS), help="comma-separated")
    args = parser.parse_args(argv)
    import torch

    started = time.perf_counter()
    names = [n for n in args.materials.split(",") if n]
    settings = SimulationSettings(device=args.device, npx=args.npx, mc_electrons=args.mc_electrons)
    device = resolve_device(args.device)
    rows: list[dict] = []
    failures: list[dict] = []
    result = {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor(),
        "torch": torch.__version__,
        "settings": settings.to_attrs(),
        "materials": rows,
        "failures": failures,
        "projection": None,
        "complete": False,
    }
    for i, name in enumerate(names):
        share = args.budget_s
        if args.total_s is not None:
            left = args.total_s - (time.perf_counter() - started)
            share = min(share, max(left, 0.0) / (len(names) - i))
        if share < MIN_SHARE_S:
            failures.append({"material": name, "error": f"skipped: {share:.1f} s left"})
            print(json.dumps(failures[-1]), flush=True)
            continue
        try:
            row = time_material(name, settings, share)
        except (RuntimeError, MemoryError) as exc:  # CUDA out of memory, driver errors
            failures.append({"material": name, "error": " ".join(str(exc).split())[:300]})
            print(json.dumps(failures[-1]), flush=True)
            if device_is_cuda(args.device):
                torch.cuda.empty_cache()
            continue
        row["budget_s"] = round(share, 1)
        print(json.dumps(row), flush=True)
        rows.append(row)
        result["projection"] = project(rows) if len(rows) >= 2 else None
        result["complete"] = len(rows) + len(failures) == len(names)
        args.out.write_text(json.dumps(result, indent=2))
    result["complete"] = True
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result["projection"], indent=2))
    if failures:
        print(f"failed: {failures}", file=sys.stderr)
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
