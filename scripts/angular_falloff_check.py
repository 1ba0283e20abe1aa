"""How the real Ni patterns lose their bands away from the pattern centre, and whether the
camera model's ``falloff_tan`` reproduces it.

kikuchipy's nine real Ni patterns are indexed against the lake's Ni master and our master is
rendered at the refined orientations on the file's detector (as ``real_pattern_probe.py``).
Both are high-passed (divided by a 7.5 px blur); per ring of angle from the pattern centre
(tan 0-0.3, ..., 1.6-2.2) the script prints the correlation of real with simulated, then that of
our simulation recorded by the camera model (``train.patterns.camera.as_recorded``) with and
without the fall-off, and the recorded static background's level per ring::

    .venv/bin/python scripts/angular_falloff_check.py --lake LAKE

LAKE needs proto-Ni's master at the cubic recipes' settings (``ebsdlake simulate``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

RINGS = (0.0, 0.3, 0.6, 0.9, 1.2, 1.6, 2.2)
"""Ring edges, as tangents of the angle from the pattern centre."""

RECORDINGS = ((0.15, 300.0), (0.08, 100.0), (0.3, 1000.0))
"""(band contrast, electrons per pixel) of the simulated recordings compared."""


def high_pass(patterns: np.ndarray) -> np.ndarray:
    """Each pattern over its 7.5 px blur, minus 1 (the bands, relative to the background)."""
    from scipy.ndimage import gaussian_filter

    return patterns / gaussian_filter(patterns, (0, 7.5, 7.5)) - 1


def ring_correlations(patterns: np.ndarray, reference: np.ndarray, tan: np.ndarray) -> list:
    """Mean over patterns of the Pearson r of ``patterns`` with ``reference`` in each ring."""
    rows = []
    for low, high in zip(RINGS[:-1], RINGS[1:], strict=True):
        ring = (tan >= low) & (tan < high)
        rows.append(np.mean([np.corrcoef(a[ring], b[ring])[0, 1] for a, b in
                             zip(patterns, reference, strict=True)]))  # fmt: skip
    return [round(float(r), 2) for r in rows]


@dataclass
class FalloffProfile:
    """Correlations per ring of angle from the pattern centre (edges :data:`RINGS`)."""

    real: list[float]
    """Real Ni (flat-fielded) against our master at the refined orientations."""
    recorded: dict[tuple[float, float, bool], list[float]]
    """Our simulation recorded by the camera model, keyed (band contrast, e/px, fall-off on)."""
    background: list[float]
    """The file's static background per ring, over its peak."""


def measure(lake_url: str, material: str = "proto-Ni") -> FalloffProfile:
    """Index the real Ni scan against ``material``'s master and measure the rings."""
    import kikuchipy as kp
    import torch
    from real_pattern_probe import clean, master_pattern, refined_rotations

    from train.patterns.camera import as_recorded, tan_from_centre
    from train.run_config import FALLOFF_DEGRADATIONS

    scan = kp.data.nickel_ebsd_small()
    master = master_pattern(lake_url, material)
    rotations, _ = refined_rotations(scan, master, 3.0)
    shape = scan.detector.shape
    simulated = master.get_patterns(
        rotations.reshape(*scan.axes_manager.navigation_shape[::-1]), scan.detector,
        compute=True, show_progressbar=False,
    ).data.astype(np.float64).reshape(-1, *shape)  # fmt: skip
    real = np.asarray(clean(scan).data, dtype=np.float64).reshape(-1, *shape)
    pcs = np.tile(np.asarray(scan.detector.pc_average, dtype=np.float64), (len(real), 1))
    tan = tan_from_centre(pcs[:1], shape)[0].numpy()
    reference = high_pass(simulated)
    recorded = {}
    for contrast, dose in RECORDINGS:
        for scales in (None, FALLOFF_DEGRADATIONS["falloff_tan"]):
            patterns = as_recorded(
                torch.as_tensor(simulated, dtype=torch.float32), (contrast, contrast),
                (dose, dose), 0.0, torch.Generator().manual_seed(0), 0.0, pcs, scales,
            ).numpy().astype(np.float64)  # fmt: skip
            key = (contrast, dose, scales is not None)
            recorded[key] = ring_correlations(high_pass(patterns), reference, tan)
    background = np.asarray(scan.static_background, dtype=np.float64)
    levels = [
        round(float(background[(tan >= lo) & (tan < hi)].mean() / background.max()), 2)
        for lo, hi in zip(RINGS[:-1], RINGS[1:], strict=True)
    ]
    return FalloffProfile(ring_correlations(high_pass(real), reference, tan), recorded, levels)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", required=True)
    parser.add_argument("--material", default="proto-Ni")
    args = parser.parse_args(argv)
    from train.run_config import FALLOFF_DEGRADATIONS

    profile = measure(args.lake, args.material)
    print("rings (tan of the angle from the pattern centre):", RINGS)
    print("real vs simulated:", profile.real)
    for (contrast, dose, falloff), r in profile.recorded.items():
        scales = FALLOFF_DEGRADATIONS["falloff_tan"] if falloff else None
        print(f"recorded, bands {contrast:.0%}, {dose:g} e/px, fall-off {scales}: {r}")
    print("static background / its peak:", profile.background)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
