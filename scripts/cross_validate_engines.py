"""Cross-validate the default engine (de-ebsd) against EMsoft's own programs.

For each material: EMsoft (``EMMC`` then ``EMEBSDmaster``, through the emsoft engine) computes
a master from the structure; de-ebsd (the dynamical engine) then computes the same master
from the structure EMsoft wrote into its output (``CrystalData``), at the settings EMsoft
recorded (``NMLparameters``) and with EMsoft's own Monte Carlo (``mc_file``), so the two
differ only in the dynamical calculation. Reported per material: Pearson r per hemisphere on
the square-Lambert grid (all energy planes), r of the yield-weighted patterns projected onto a
detector at random orientations (the projection training uses), and each engine's wall time.

    EMSOFT_BIN=.emsoft/bin .venv/bin/python scripts/cross_validate_engines.py \\
        --materials Ni Si FeAl --npx 60 --out cross_validation.json

Materials are the bundled reference structures (one per crystal system: Ni, Si, Cr3Si,
Y3Al5O12, Mg, TiS2, TiO2, U, CuO, triclinic) and the bundled prototypes by formula or id
(FeAl = proto-FeAl (B2), NbC, TiC, ...). Needs ``make emsoft``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

#: Prototype ids for names the issue uses.
ALIASES = {"AlFe": "proto-FeAl", "Mo3Si": "proto-Mo3Si"}
TARGET_R = 0.999


def electron_wavelength_nm(energy_kev: float) -> float:
    """Relativistic electron wavelength in nm at ``energy_kev``."""
    volts = energy_kev * 1e3
    return 1.226426 / float(np.sqrt(volts * (1.0 + 0.97847e-6 * volts)))


@contextlib.contextmanager
def emsoft_absorption_quirk(beam_kev: float):
    """Make de-ebsd weight depths the way EMEBSDmaster does (found by this script).

    EMEBSDmaster corrects each energy bin's exit-depth weights ``lambdaE`` by
    ``exp(2 pi z / x_gp)`` with ``x_gp = 1 / |U'_0| / lambda`` computed while the cell still
    holds the *beam* energy's wavelength, so below the beam energy its ``x_gp`` is too long
    by ``lambda(E) / lambda(E_beam)``. de-ebsd uses each bin's own wavelength. Inside this
    context de-ebsd uses EMsoft's value, which isolates every other difference.
    """
    from de_ebsd.sim.montecarlo.depth import DepthDistribution

    original = DepthDistribution.depth_weights

    def depth_weights(self, energy_kev: float, normal_absorption_length: float):
        scale = electron_wavelength_nm(energy_kev) / electron_wavelength_nm(beam_kev)
        return original(self, energy_kev, normal_absorption_length * scale)

    DepthDistribution.depth_weights = depth_weights
    try:
        yield
    finally:
        DepthDistribution.depth_weights = original


def structure_for(name: str, prototypes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A structure record by reference name, prototype formula or prototype id."""
    from simulate.reference_structures import reference_names, reference_structure

    if name in reference_names():
        return reference_structure(name)
    key = ALIASES.get(name, name if name.startswith("proto-") else f"proto-{name}")
    if key not in prototypes:
        known = ", ".join(sorted(reference_names()) + sorted(prototypes))
        raise SystemExit(f"cross_validate_engines: unknown material {name!r}; known: {known}")
    return {**prototypes[key], "material_id": key}


def load_prototypes() -> dict[str, dict[str, Any]]:
    """The bundled prototypes as lake structure attributes (ingested into a scratch lake)."""
    from infra.app.cli import main as cli
    from lake import Lake

    url = tempfile.mkdtemp(prefix="xval-lake-")
    if cli(["--lake", url, "ingest", "prototypes"]) != 0:
        raise SystemExit("cross_validate_engines: could not ingest the bundled prototypes")
    lk = Lake.open(url, mode="r")
    return {mid: dict(lk.structure(mid)) for mid in lk.structure_ids()}


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation coefficient of two arrays of the same size."""
    return float(np.corrcoef(np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64))[0, 1])


def projected_r(ours: Any, theirs: Any, orientations: int, seed: int, detector_px: int) -> float:
    """r of the yield-weighted masters projected at ``orientations`` random orientations."""
    import torch

    from train.patterns.detector import Detector
    from train.patterns.orientations import sample_so3
    from train.patterns.projection import energy_reduced_master, project

    planes = [energy_reduced_master(r.master, r.weights, r.energies_kev) for r in (ours, theirs)]
    masters = torch.from_numpy(np.stack(planes).astype(np.float32))
    quats = sample_so3(orientations, seed)
    detector = Detector(shape=(detector_px, detector_px), pc=(0.5, 0.5, 0.5))
    patterns = []
    for index in (0, 1):
        material = np.full(orientations, index)
        patterns.append(project(masters, material, quats, detector, device="cpu").numpy())
    return pearson(patterns[0], patterns[1])


def emsoft_sampling_checks(
    crystal: dict[str, Any], path: Path, ours: Any, emsoft: Any, device: str
) -> dict[str, Any]:
    """Beam-energy r after accounting for how EMEBSDmaster fills its grid (issue #14).

    ``emsoft_unfilled_fraction``: EMsoft's pixels left exactly zero (its symmetry fill keeps
    only point operators without translation, so for e.g. P4_2/mnm half the sphere stays
    empty); ``r_beam_filled``: r on the pixels it filled. For hexagonal and trigonal crystals,
    ``r_beam_*_emsoft_hex_sampling``: de-ebsd sampled on EMsoft's hexagonal grid and
    interpolated onto the square as EMEBSDmaster does (:mod:`emsoft_hex_sampling`), over the
    square without its outer rim (the equator, where EMsoft also fills nodes outside the hexagon).
    """
    out: dict[str, Any] = {}
    theirs, mine = emsoft.master[-1], ours.master[-1]
    filled = theirs != 0
    out["emsoft_unfilled_fraction"] = round(float(1.0 - filled.mean()), 6)
    if not filled.all():
        out["r_beam_filled"] = round(pearson(mine[filled], theirs[filled]), 6)
    if crystal.get("crystal_system") in ("hexagonal", "trigonal"):
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from emsoft_hex_sampling import dynamical_intensity, emsoft_hex_master

        intensity, npx = dynamical_intensity(str(path), device)
        sampled = emsoft_hex_master(intensity, npx)
        inner = (slice(1, -1), slice(1, -1))
        for index, side in enumerate(("north", "south")):
            out[f"r_beam_{side}_emsoft_hex_sampling"] = round(
                pearson(sampled[index][inner], theirs[index][inner]), 6
            )
    return out


def compare(name: str, structure: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Run both engines on one material and correlate; see the module docstring."""
    from simulate.emsoft_io import read_settings, read_structure
    from simulate.engine_emsoft import EmsoftEngine
    from simulate.engines import get_engine
    from simulate.settings import SimulationSettings

    settings = SimulationSettings(
        engine="emsoft",
        npx=args.npx,
        dmin_nm=args.dmin,
        voltage_kv=args.voltage,
        energy_min_kev=args.energy_min,
        energy_max_kev=args.voltage,
        energy_step_kev=args.energy_step,
        bethe_strong=args.bethe[0],
        bethe_weak=args.bethe[1],
        bethe_cutoff=args.bethe[2],
        mc_electrons=args.mc_electrons,
    )
    keep = Path(tempfile.mkdtemp(prefix=f"xval-{name}-"))
    row: dict[str, Any] = {"material": name, "material_id": structure.get("material_id")}
    try:
        started = time.perf_counter()
        # check_filled=False: read a master EMsoft left partly empty (P4_2/mnm) to diagnose it
        emsoft = EmsoftEngine(keep_dir=keep, check_filled=False).run(structure, settings)
        row["emsoft_wall_s"] = round(time.perf_counter() - started, 2)
        (path,) = keep.glob("*/mc.h5")
        same = read_settings(path).refine(engine="dynamical", device=args.device)
        crystal = {**read_structure(path), "material_id": name}
        started = time.perf_counter()
        ours = get_engine("dynamical").run(crystal, same)
        row["dynamical_wall_s"] = round(time.perf_counter() - started, 2)
    except Exception as exc:  # one failing material must not stop the others
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row
    row["emsoft_mc_s"] = round(row["emsoft_wall_s"] - (emsoft.attrs.get("emsoft_duration") or 0), 2)
    row["emsoft_master_s"] = emsoft.attrs.get("emsoft_duration")
    if ours.master.shape != emsoft.master.shape:
        row["error"] = f"shapes differ: de-ebsd {ours.master.shape}, EMsoft {emsoft.master.shape}"
        return row
    row["r_north"] = round(pearson(ours.master[:, 0], emsoft.master[:, 0]), 6)
    row["r_south"] = round(pearson(ours.master[:, 1], emsoft.master[:, 1]), 6)
    row["r_projected"] = round(
        projected_r(ours, emsoft, args.orientations, args.seed, args.detector_px), 6
    )
    row["r_per_energy"] = {
        f"{e:g}": round(pearson(ours.master[i], emsoft.master[i]), 6)
        for i, e in enumerate(emsoft.energies_kev)
    }
    if len(emsoft.energies_kev) > 1:
        with emsoft_absorption_quirk(float(same.voltage_kv)):
            quirk = get_engine("dynamical").run(crystal, same)
        row["r_north_emsoft_absorption"] = round(
            pearson(quirk.master[:, 0], emsoft.master[:, 0]), 6
        )
        row["r_south_emsoft_absorption"] = round(
            pearson(quirk.master[:, 1], emsoft.master[:, 1]), 6
        )
    row.update(emsoft_sampling_checks(crystal, path, ours, emsoft, args.device))
    row["passed"] = min(row["r_north"], row["r_south"], row["r_projected"]) >= TARGET_R
    row["speed_ratio_master"] = (
        round(row["dynamical_wall_s"] / row["emsoft_master_s"], 2)
        if row.get("emsoft_master_s")
        else None
    )
    return row


def main(argv: list[str] | None = None) -> int:
    """Command line; prints one line per material and writes ``--out`` (JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--materials", nargs="+", default=["Ni", "Si", "FeAl"])
    parser.add_argument("--npx", type=int, default=60)
    parser.add_argument("--dmin", type=float, default=0.08, help="nm")
    parser.add_argument("--voltage", type=float, default=20.0, help="keV")
    parser.add_argument("--energy-min", type=float, default=19.0, help="keV")
    parser.add_argument(
        "--energy-step", type=float, default=1.0, help="keV between planes (recipes: 5)"
    )
    parser.add_argument("--bethe", type=float, nargs=3, default=[8.0, 50.0, 100.0])
    parser.add_argument("--mc-electrons", type=int, default=1_000_000)
    parser.add_argument("--orientations", type=int, default=20)
    parser.add_argument("--detector-px", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("cross_validation.json"))
    args = parser.parse_args(argv)
    from simulate.reference_structures import reference_names

    needs_prototypes = any(m not in reference_names() for m in args.materials)
    prototypes = load_prototypes() if needs_prototypes else {}
    rows = []
    for name in args.materials:
        row = compare(name, structure_for(name, prototypes), args)
        rows.append(row)
        shown = {k: v for k, v in row.items() if k != "material_id"}
        print(json.dumps(shown), flush=True)
    report = {
        "command": " ".join(["scripts/cross_validate_engines.py", *(argv or sys.argv[1:])]),
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "materials")},
        "target_r": TARGET_R,
        "results": rows,
    }
    args.out.write_text(json.dumps(report, indent=2))
    return 0 if all(row.get("passed") for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
