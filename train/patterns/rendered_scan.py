"""Simulated scans rendered by kikuchipy, not by our projector: a check of predict against
another renderer on another microscope's detector.

Masters from the lake are projected with kikuchipy's ``EBSDMasterPattern.get_patterns`` onto a
kikuchipy ``EBSDDetector`` and saved as an h5ebsd file whose header carries that geometry, so
``predict`` reads them as it reads a real recording. ``degrade`` adds what a camera adds: a
round screen edge (dark corners), an uneven residual background and shot noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHOT_NOISE_COUNTS = 2000
"""Electrons per pixel at full brightness of a degraded render (Poisson noise)."""


def render_scan(
    lake,
    material_ids: list[str],
    path: str | Path,
    detector,
    degrade: bool,
    n_per_material: int = 40,
    seed: int = 3,
    label_key: str = "disordered_spacegroup_number",
) -> list:
    """Render ``n_per_material`` random orientations of each material's ``default`` master
    (first energy) on ``detector`` into the h5ebsd scan ``path`` (1 row, all patterns in
    order); return each pattern's label (the structure attribute ``label_key``).

    The orientations depend on ``seed`` and the material's position only, so two detectors
    see the same crystals in the same orientations.
    """
    import kikuchipy as kp
    from orix.crystal_map import Phase
    from orix.quaternion import Rotation

    from train.patterns.orientations import sample_so3

    shape = tuple(detector.shape)
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[: shape[0], : shape[1]] / np.array(shape)[:, None, None]
    screen = ((rows - 0.5) / 0.55) ** 2 + ((cols - 0.5) / 0.525) ** 2 <= 1  # dark corners
    glow = 1 + 0.4 * np.exp(-(((rows - 0.33) / 0.6) ** 2) - ((cols - 0.62) / 0.56) ** 2)
    patterns, labels = [], []
    for k, material_id in enumerate(material_ids):
        master = lake.master(material_id, "default").values[0].astype(np.float32)
        signal = kp.signals.EBSDMasterPattern(master)
        signal.projection, signal.hemisphere = "lambert", "both"
        structure = lake.structure(material_id)
        signal.phase = Phase(space_group=int(structure["spacegroup_number"]))
        rotations = Rotation(sample_so3(n_per_material, seed=seed + k))
        rendered = signal.get_patterns(
            rotations, detector, compute=True, show_progressbar=False
        ).data.astype(np.float64)
        rendered = rendered / rendered.max()  # intensities as rendered, scaled to 1
        if degrade:
            counts = rendered * glow * screen * SHOT_NOISE_COUNTS
            rendered = rng.poisson(counts) / SHOT_NOISE_COUNTS
        patterns.append(rendered)
        labels += [structure[label_key]] * n_per_material
    scan = kp.signals.EBSD(np.concatenate(patterns).astype(np.float32)[None])
    scan.detector = detector
    scan.save(str(path))
    return labels
