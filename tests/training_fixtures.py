"""Session fixtures for the training-side tests: a tiny lake of real dynamical masters.

Twelve cubic materials in three classes, simulated with the real de-ebsd engine at tiny settings
(npx 32, dmin 0.15 nm, one 20 keV plane): fcc (Fm-3m, 225), bcc (Im-3m, 229) and diamond
(Fd-3m, 227), four elements or lattice parameters each. One material per class also gets a
random-B variant ``b01`` (MCD source). Masters are computed once per session and written to a
local lake; ``s3_training_lake`` copies them into the loopback S3 server.

Import the fixtures in a test module with ``from training_fixtures import ...`` (tests/ is on sys.path under pytest), with
explicit names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pytest

#: (material id, element, lattice parameter a in nm, space group, fractional site)
MATERIALS = [
    ("t-cu", "Cu", 0.3615, 225, (0.0, 0.0, 0.0)),
    ("t-al", "Al", 0.4050, 225, (0.0, 0.0, 0.0)),
    ("t-ni", "Ni", 0.3524, 225, (0.0, 0.0, 0.0)),
    ("t-ag", "Ag", 0.4086, 225, (0.0, 0.0, 0.0)),
    ("t-fe", "Fe", 0.2866, 229, (0.0, 0.0, 0.0)),
    ("t-w", "W", 0.3165, 229, (0.0, 0.0, 0.0)),
    ("t-mo", "Mo", 0.3147, 229, (0.0, 0.0, 0.0)),
    ("t-cr", "Cr", 0.2884, 229, (0.0, 0.0, 0.0)),
    ("t-si", "Si", 0.5431, 227, (0.125, 0.125, 0.125)),
    ("t-ge", "Ge", 0.5658, 227, (0.125, 0.125, 0.125)),
    ("t-c", "C", 0.3567, 227, (0.125, 0.125, 0.125)),
    ("t-sn", "Sn", 0.6489, 227, (0.125, 0.125, 0.125)),
]
HELD_OUT = ["t-ag", "t-cr", "t-sn"]
SYMBOLS = {225: "Fm-3m", 227: "Fd-3m", 229: "Im-3m"}
BRAVAIS = {225: "cF", 227: "cF", 229: "cI"}
RANDOM_B = {"t-cu", "t-fe", "t-si"}
NPX, DMIN_NM, ENERGY_KEV = 32, 0.15, 20.0


@dataclass
class TrainingLake:
    """A lake ready for training tests."""

    url: str
    storage_options: dict
    material_ids: list[str]
    train_ids: list[str]
    test_ids: list[str]


def _structure_attrs(element: str, a_nm: float, sg: int, xyz) -> dict:
    """Flat label attributes (docs/ARCHITECTURE.md) of a one-element cubic structure."""
    labels = {
        "spacegroup_number": sg,
        "spacegroup_symbol": SYMBOLS[sg],
        "point_group": "m-3m",
        "crystal_system": "cubic",
        "bravais_lattice": BRAVAIS[sg],
    }
    attrs = {"formula": element, "source": "synthetic", **labels}
    attrs.update({f"disordered_{k}": v for k, v in labels.items()})
    attrs["lattice_nm"] = {"a": a_nm, "b": a_nm, "c": a_nm, "alpha": 90, "beta": 90, "gamma": 90}
    attrs["sites"] = [{"element": element, "xyz": list(xyz), "occupancy": 1.0, "B_nm2": 0.005}]
    return attrs


def _cif(element: str, a_nm: float, sg: int, xyz) -> str:
    """Minimal CIF text (lengths in Angstrom as CIF requires)."""
    a = a_nm * 10
    return (
        f"data_{element}\n_cell_length_a {a:.4f}\n_cell_length_b {a:.4f}\n"
        f"_cell_length_c {a:.4f}\n_cell_angle_alpha 90\n_cell_angle_beta 90\n"
        f"_cell_angle_gamma 90\n_symmetry_Int_Tables_number {sg}\n"
        f"loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n"
        f"{element}1 {xyz[0]} {xyz[1]} {xyz[2]}\n"
    )


def _simulate(element: str, a_nm: float, sg: int, xyz, b_nm2: float) -> np.ndarray:
    """One tiny real master pattern, float32 (1, 2, 65, 65)."""
    import de_ebsd as de
    import torch

    torch.set_num_threads(1)
    crystal = de.Crystal.from_parameters(
        a=a_nm, space_group=sg, atoms=[(element, xyz)], debye_waller=b_nm2
    )
    microscope = de.Microscope(energy=ENERGY_KEV * 1e3, sample_tilt=70.0)
    simulator = de.MasterPatternSimulator(crystal, microscope, npx=NPX, dmin=DMIN_NM)
    master = simulator.compute(device="cpu", mc_electrons=20_000)
    return np.asarray(master.data.cpu().numpy(), dtype=np.float32)


@pytest.fixture(scope="session")
def training_masters() -> dict[tuple[str, str], np.ndarray]:
    """Masters of every (material, variant), simulated once per session."""
    rng = np.random.default_rng(7)
    masters = {}
    for mid, element, a_nm, sg, xyz in MATERIALS:
        masters[(mid, "default")] = _simulate(element, a_nm, sg, xyz, 0.005)
        if mid in RANDOM_B:
            masters[(mid, "b01")] = _simulate(element, a_nm, sg, xyz, rng.uniform(0.005, 0.011))
    return masters


def fill_lake(url: str, storage_options: dict, masters: dict) -> TrainingLake:
    """Write the structures and masters into the lake at ``url``."""
    from lake import Lake

    lake = Lake.open(url, storage_options=storage_options, create=True)
    for mid, element, a_nm, sg, xyz in MATERIALS:
        lake.put_structure(
            mid, cif=_cif(element, a_nm, sg, xyz), attrs=_structure_attrs(element, a_nm, sg, xyz)
        )
    for (mid, variant), master in masters.items():
        lake.write_master(
            mid,
            variant,
            master,
            energies_kev=[ENERGY_KEV],
            weights=[1.0],
            attrs={"engine": "de-ebsd", "npx": NPX, "dmin_nm": DMIN_NM, "voltage_kv": 20.0},
        )
    ids = [m[0] for m in MATERIALS]
    return TrainingLake(
        url, dict(storage_options), ids, [m for m in ids if m not in HELD_OUT], list(HELD_OUT)
    )


@pytest.fixture(scope="session")
def training_lake(tmp_path_factory, training_masters) -> TrainingLake:
    """A local lake with the twelve materials (read-mostly; tests write only runs)."""
    url = str(tmp_path_factory.mktemp("training") / "lake")
    return fill_lake(url, {}, training_masters)


@pytest.fixture(scope="module")
def ray_two_cpus():
    """A local Ray runtime with 2 CPUs for one test module, shut down afterwards.

    Its workers see ``OMP_NUM_THREADS=2`` (as under ``make``), so a training worker that took
    its torch threads from the environment instead of its 1 CPU shows up in the history.
    """
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False,
        runtime_env={"env_vars": {"OMP_NUM_THREADS": "2"}},
    )  # fmt: skip
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def nickel_scan_file() -> str:
    """Path of kikuchipy's real 3x3 Ni scan (60x60 px patterns, h5ebsd)."""
    from train.patterns.sample_scans import kikuchipy_ni_files

    path = kikuchipy_ni_files()["h5ebsd"]
    assert path.is_file(), f"kikuchipy's bundled Ni scan is missing at {path}"
    return str(path)
