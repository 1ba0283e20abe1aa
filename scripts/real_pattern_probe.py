"""Where between simulation and experiment a model stops calling kikuchipy's real Ni right.

The nine real Ni patterns (kikuchipy's h5ebsd file, two grains) are indexed against the lake's
Ni master with kikuchipy (dictionary indexing, then orientation refinement at the file's own
detector), and the master is rendered at each pattern's refined orientation on that detector.
Files in the real file's format (its static background, its pattern centre) are then written
for the simulation (clean, blurred 1 px, with shot noise or white noise), the real patterns
averaged within each grain (the grains found from the refined orientations: the noise averaged
away, the content kept; also blurred, and magnified about the pattern centre) and blends of
real and simulated flat-fielded patterns,
and ``ebsdlake predict --model MODEL`` is run on each. The table says whether the model fails on Ni at this orientation at all (then
it is not the domain gap), how much of the real pattern it takes to flip the call, and whether
a call on the real patterns survives taking their noise away.

    .venv/bin/python scripts/real_pattern_probe.py --lake LAKE --material proto-Ni \\
        --model cubic-lab --out probe

LAKE needs the material's master at the model's simulation settings (``ebsdlake simulate``).
Writes ``probe/summary.json`` and ``probe/patterns.png`` (real, simulated, difference).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BLENDS = (0.25, 0.5, 0.75)
"""Shares of the real flat-fielded pattern in the blended files."""
DOSES = (2000, 200, 50)
"""Electrons per pixel at full brightness for the noisy simulations."""
MATCHED_R = (0.7, 0.45)
"""Correlations with the clean simulation that white noise brings a simulation down to (the
real patterns' own: 0.39-0.53), without and with a 1 px Gaussian blur first."""


def master_pattern(lake_url: str, material_id: str) -> Any:
    """The material's default master, yield-weighted over energies, as kikuchipy's signal."""
    import kikuchipy as kp
    from orix.crystal_map import Phase

    from lake import Lake
    from train.patterns.projection import energy_reduced_master

    lake = Lake.open(lake_url, mode="r")
    master = lake.master(material_id, "default")
    weights = lake.weights(material_id, "default").values
    planes = energy_reduced_master(master.values, weights, master["energy"].values)
    signal = kp.signals.EBSDMasterPattern(np.asarray(planes, dtype=np.float32))
    signal.projection, signal.hemisphere = "lambert", "both"
    signal.phase = Phase(space_group=int(lake.structure(material_id)["spacegroup_number"]))
    return signal


def standardised(x: np.ndarray) -> np.ndarray:
    """Each pattern (last two axes) to zero mean and unit standard deviation."""
    mean = x.mean(axis=(-2, -1), keepdims=True)
    return (x - mean) / x.std(axis=(-2, -1), keepdims=True)


def blurred(x: np.ndarray, sigma_px: float) -> np.ndarray:
    """Each pattern blurred by a Gaussian of ``sigma_px`` detector pixels."""
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(x, (0,) * (x.ndim - 2) + (sigma_px, sigma_px))


GRAIN_ANGLE_DEG = 5.0
"""Patterns whose refined orientations are closer than this are of one grain."""


def grains_of(angles_deg: np.ndarray, limit_deg: float = GRAIN_ANGLE_DEG) -> np.ndarray:
    """Grain number of each of n patterns from their (n, n) disorientation angles: patterns
    linked by a chain of angles below ``limit_deg`` share a grain (numbered from 0 in order)."""
    n = len(angles_deg)
    grain = np.full(n, -1)
    for start in range(n):
        if grain[start] >= 0:
            continue
        grain[start], todo = grain.max() + 1, [start]
        while todo:
            here = todo.pop()
            for other in np.flatnonzero((angles_deg[here] < limit_deg) & (grain < 0)):
                grain[other] = grain[start]
                todo.append(other)
    return grain


def grain_averaged(x: np.ndarray, grain: np.ndarray) -> np.ndarray:
    """Every pattern of the (nav..., H, W) scan replaced by the mean of its grain's patterns
    (``grain``: one number per pattern, in scan order): the shot noise averaged away as
    neighbour-pattern averaging inside a grain would, the content kept."""
    flat = x.reshape(-1, *x.shape[-2:])
    out = np.empty_like(flat)
    for number in np.unique(grain):
        out[grain == number] = flat[grain == number].mean(axis=0)
    return out.reshape(x.shape)


ZOOMS = (1.15, 1.3)
"""Magnifications about the pattern centre of the grain-averaged real patterns (bands and the
angles between them drawn that much larger, as at a detector that much farther away)."""


def zoomed_about(x: np.ndarray, centre_rc: tuple[float, float], factor: float) -> np.ndarray:
    """Each (H, W) pattern magnified ``factor`` times about ``centre_rc`` (row, column in
    pixels), bilinear, edges repeated."""
    from scipy.ndimage import affine_transform

    centre = np.asarray(centre_rc, dtype=float)
    flat = x.reshape(-1, *x.shape[-2:])
    out = [
        affine_transform(p, np.eye(2) / factor, offset=centre - centre / factor, order=1,
                         mode="nearest")
        for p in flat
    ]  # fmt: skip
    return np.stack(out).reshape(x.shape)


def probe_variants(
    real_z: np.ndarray,
    rendered: np.ndarray,
    grain: np.ndarray,
    seed: int,
    centre_rc: tuple[float, float] | None = None,
) -> dict[str, np.ndarray]:
    """The probe's patterns by row name, from the standardised flat-fielded real scan, the
    simulation's intensities at its refined orientations (same shape) and each pattern's grain:
    the simulation clean, blurred and noisy; the real patterns averaged within their grain
    (noise down, content kept), blurred, and magnified about the pattern centre ``centre_rc``
    (row, column in pixels; no such rows without it); blends of the two."""
    rng = np.random.default_rng(seed)
    sim_z = standardised(rendered)
    rows = {"real, rewritten": real_z, "simulated": sim_z}
    rows["simulated, blur 1 px"] = blurred(sim_z, 1.0)
    bright = rendered / rendered.max()
    for dose in DOSES:
        rows[f"simulated, {dose} e/px"] = rng.poisson(bright * dose) / dose
    for target in MATCHED_R:
        for sigma in (0.0, 1.0):
            smooth = standardised(blurred(sim_z, sigma) if sigma else sim_z)
            noise = rng.standard_normal(smooth.shape) * np.sqrt(1 / target**2 - 1)
            rows[f"simulated{', blur 1 px' if sigma else ''}, white noise to r {target}"] = (
                smooth + noise
            )
    averaged = grain_averaged(real_z, grain)
    rows["real, grain averaged"] = averaged
    rows["real, grain averaged, blur 1 px"] = blurred(averaged, 1.0)
    for factor in ZOOMS if centre_rc is not None else ():
        rows[f"real, grain averaged, zoomed {factor:g}x"] = zoomed_about(
            averaged, centre_rc, factor
        )
    for share in BLENDS:
        rows[f"{share:.0%} real"] = share * real_z + (1 - share) * sim_z
    return rows


def disorientations_deg(rotations: Any, point_group: Any) -> np.ndarray:
    """(n, n) disorientation angles in degrees between n orix rotations of one phase."""
    from orix.quaternion import Orientation

    flat = Orientation(rotations.data.reshape(-1, 4), symmetry=point_group)
    return np.asarray(flat.angle_with_outer(flat, degrees=True))


def clean(scan: Any) -> Any:
    """The scan flat-fielded as kikuchipy's tutorials do: static, then dynamic background."""
    out = scan.deepcopy()
    out.remove_static_background()
    out.remove_dynamic_background()
    return out


def refined_rotations(scan: Any, master: Any, resolution_deg: float) -> tuple[Any, np.ndarray]:
    """Each pattern's orientation: dictionary indexing then refinement; (rotations, NCC)."""
    from orix.crystal_map import CrystalMap
    from orix.quaternion import Rotation
    from orix.sampling import get_sample_fundamental

    flat = clean(scan)
    detector = scan.detector.deepcopy()
    detector.pc = detector.pc_average  # one centre for the dictionary
    grid = get_sample_fundamental(resolution=resolution_deg, point_group=master.phase.point_group)
    dictionary = master.get_patterns(grid, detector, compute=False, show_progressbar=False)
    found = flat.dictionary_indexing(dictionary, keep_n=1)
    best = Rotation(found.rotations.data.reshape(-1, 4))  # kikuchipy keeps an axis per match
    xmap = CrystalMap(rotations=best, x=found.x, y=found.y, phase_list=found.phases)
    refined = flat.refine_orientation(
        xmap, scan.detector, master, energy=None, trust_region=[2, 2, 2], compute=True
    )
    scores = np.asarray(refined.scores).reshape(-1)
    return refined.rotations, scores


def write_like(scan: Any, patterns: np.ndarray, path: Path) -> Path:
    """``patterns`` (flat-fielded, any scale) written as ``scan`` was recorded: times its static
    background, in its dtype range, with its header (pattern centre, background)."""
    background = np.asarray(scan.static_background, dtype=np.float64)
    scaled = (patterns - patterns.min()) / np.ptp(patterns)
    raw = (0.3 + 0.7 * scaled) * background[None, None]
    info = np.iinfo(scan.data.dtype)
    out = scan.deepcopy()
    out.data = np.clip(np.round(raw / raw.max() * info.max), 0, info.max).astype(scan.data.dtype)
    out.save(str(path), overwrite=True)
    return path


def predict(path: Path, model: str, out: Path) -> dict[str, Any]:
    """``ebsdlake predict --model`` on ``path``: per-pattern calls and the mean probabilities."""
    folder = out / f"predict-{path.stem}"
    command = [str(ROOT / ".venv/bin/ebsdlake"), "predict", "--model", model, str(path)]
    subprocess.run([*command, "--out", str(folder)], check=True, capture_output=True)
    rows = list(csv.DictReader((folder / f"{path.stem}.csv").open()))
    classes = [key for key in rows[0] if key.startswith("p_")]
    calls: dict[str, int] = {}
    for row in rows:
        key = row["symbol"] if row["verdict"] in ("confident", "outside") else "uncertain"
        calls[key] = calls.get(key, 0) + 1
    means = {c[2:]: round(float(np.mean([float(r[c]) for r in rows])), 3) for c in classes}
    return {"calls": calls, "mean_probability": means}


def figure(real: np.ndarray, simulated: np.ndarray, path: Path) -> None:
    """Real, simulated and their difference for the first pattern, flat-fielded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def z(image: np.ndarray) -> np.ndarray:
        return (image - image.mean()) / image.std()

    panels = {"real (flat-fielded)": z(real), "simulated, refined orientation": z(simulated)}
    panels["real - simulated"] = panels["real (flat-fielded)"] - panels[list(panels)[1]]
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    for ax, (title, image) in zip(axes, panels.items(), strict=True):
        ax.imshow(image, cmap="gray")
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", required=True)
    parser.add_argument("--material", default="proto-Ni")
    parser.add_argument("--model", default="cubic-lab")
    parser.add_argument("--resolution", type=float, default=3.0, help="dictionary step, deg")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("probe"))
    args = parser.parse_args(argv)
    import kikuchipy as kp

    from train.patterns.sample_scans import kikuchipy_ni_files

    args.out.mkdir(parents=True, exist_ok=True)
    scan = kp.data.nickel_ebsd_small()
    master = master_pattern(args.lake, args.material)
    rotations, scores = refined_rotations(scan, master, args.resolution)
    nav = scan.axes_manager.navigation_shape[::-1]
    rendered = master.get_patterns(
        rotations.reshape(*nav), scan.detector, compute=True, show_progressbar=False
    ).data.astype(np.float64)
    real = np.asarray(clean(scan).data, dtype=np.float64)
    real_z, sim_z = standardised(real), standardised(rendered)
    correlation = (real_z * sim_z).mean(axis=(-2, -1))
    grain = grains_of(disorientations_deg(rotations, master.phase.point_group))
    files = {"real file": kikuchipy_ni_files()["h5ebsd"]}
    pc_x, pc_y, _ = np.asarray(scan.detector.pc_average, dtype=float)  # Bruker: from the top left
    height, width = real.shape[-2:]
    rows = probe_variants(real_z, rendered, grain, args.seed, (pc_y * height, pc_x * width))
    for index, (name, patterns) in enumerate(rows.items()):
        files[name] = write_like(scan, patterns, args.out / f"variant{index:02d}.h5")
    results = {name: predict(path, args.model, args.out) for name, path in files.items()}
    summary = {
        "material": args.material,
        "model": args.model,
        "refined_ncc": [round(float(s), 3) for s in scores],
        "real_vs_simulated_r": [round(float(r), 3) for r in correlation.ravel()],
        "orientations_euler_deg": np.rad2deg(rotations.to_euler()).round(1).tolist(),
        "grain": grain.tolist(),
        "predictions": results,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    figure(real.reshape(-1, *real.shape[-2:])[0], rendered.reshape(-1, *real.shape[-2:])[0],
           args.out / "patterns.png")  # fmt: skip
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
