"""Named model recipes: which structures, which masters and which training make a model.

A recipe is the whole of ``ebsdlake model build NAME``: the training set (bundled prototypes,
decorated cubic structure types over an element pool, synthetic crystals of all 230 groups
balanced over the Laue classes), the classes kept (the paper's five disordered space groups, or
every label value), the simulation settings, the training settings and the evaluation sizes
(held-out materials, and whole space groups never trained on). ``scaled(k)`` is the scale knob:
k times the generated crystals, patterns per material and epochs, for GPU workers
(``--workers N --gpu``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ingest.synthetic import SyntheticParams
from simulate.settings import SimulationSettings
from train.supervised import SupervisedConfig
from train.targets import scoped_label

PAPER_CLASSES = (221, 223, 225, 227, 229)
"""The paper's disordered space groups: Pm-3m, Pm-3n, Fm-3m, Fd-3m, Im-3m. Ia-3d (230) has no
structure type here and no decorated crystal falls into it; its materials are left out of the
training set (the network has no Ia-3d output; such a phase comes out uncertain or as a
neighbour)."""

WIDE_POOL = (
    "Al", "Si", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "Zr", "Nb",
    "Mo", "Pd", "Ag", "Sn", "Ta", "W", "Pt", "Au", "Pb",
)  # fmt: skip
"""Elements decorated structure types draw from: light to heavy, so atomic numbers differ
widely within a crystal (the ordering the disordered label ignores is then visible or not)."""


@dataclass(frozen=True)
class Recipe:
    """Everything ``model build`` runs, with units.

    Attributes
    ----------
    name, description
        Recipe name (``model build NAME``) and one line of what it is for.
    prototypes
        Ingest the bundled prototypes (the paper's real phases).
    decorated_per_type, elements, structure_types
        Decorated crystals per cubic structure type, the element pool, and the types (None:
        all twelve).
    noncubic_prototypes
        Ingest the bundled non-cubic real phases (``ingest.noncubic``) as training materials.
    synthetic_per_laue_class, synthetic, synthetic_groups
        Synthetic crystals (pyxtal) per Laue class, spread evenly over the class's space
        groups (0: none), their generation parameters, and the groups drawn from (None: all
        230; a Laue class with none of them gets no crystals).
    groups_per_laue_class
        At most this many of a Laue class's groups (a seeded draw; None: all of them): the
        orthorhombic class alone has 59 groups, more than its share of crystals.
    classes
        Label values kept; other materials are not trained on (None: every value).
    simulation
        Master settings (npx, dmin in nm, energies in keV, Bethe, Monte Carlo electrons).
    beam_energies_kv
        Further beam energies (kV) each material is simulated at, beside ``simulation``'s own
        voltage: the lake variants ``kvNN`` (energy bins moved with the beam). Training draws
        each pattern's energy among all of them; held-out scores mix them alike. Empty: one.
    training
        The supervised run (network, input size in px, epochs, pattern-centre range...).
    holdout_fraction
        Share of each class's materials held out, grouped by material, for the accuracies.
    unseen_group_fraction
        Share of each Laue class's space groups whose materials are never trained on: the
        "unknown phase" test set (0: none).
    unseen_structure_types
        Structure types (``ingest.structure_types``) whose every material, decorated or
        prototype, is never trained on: a new structure rather than a new decoration of a known
        one (empty: none; each class must keep a type in training).
    evaluation_patterns, calibration_patterns
        Projections per held-out material for the accuracy and for the calibration.
    out_of_class, out_of_class_patterns
        Bundled non-cubic phases (``ingest.noncubic``) simulated alongside and never trained
        on, and patterns of each, to measure how often the model says "uncertain" on them.
    seed
        Seed of the decorations, the split, the stream and the network.
    training_seed
        Seed of the stream and the network alone, when not ``seed`` (None): a second draw of
        the same recipe on the same materials and split, to tell a change from chance.
    varies
        The recipe this one varies (``scripts/recipe_variant.py``; recorded in the card's
        settings so tools find the base's masters and settings); None for a named recipe.
    """

    name: str
    description: str
    prototypes: bool = True
    decorated_per_type: int = 16
    elements: tuple[str, ...] = WIDE_POOL
    structure_types: tuple[str, ...] | None = None
    noncubic_prototypes: bool = False
    synthetic_per_laue_class: int = 0
    synthetic: SyntheticParams = field(default_factory=SyntheticParams)
    synthetic_groups: tuple[int, ...] | None = None
    groups_per_laue_class: int | None = None
    classes: tuple[int | str, ...] | None = PAPER_CLASSES
    simulation: SimulationSettings = field(default_factory=SimulationSettings)
    beam_energies_kv: tuple[float, ...] = ()
    training: SupervisedConfig = field(default_factory=SupervisedConfig)
    holdout_fraction: float = 0.2
    unseen_group_fraction: float = 0.0
    unseen_structure_types: tuple[str, ...] = ()
    evaluation_patterns: int = 100
    calibration_patterns: int = 50
    out_of_class: tuple[str, ...] = ("Mg", "TiO2")
    out_of_class_patterns: int = 100
    seed: int = 0
    training_seed: int | None = None
    varies: str | None = None

    def laue_class_groups(self) -> dict[str, list[int]]:
        """The space groups synthetic crystals are drawn from, per Laue class (classes with
        none are left out)."""
        import numpy as np

        from lake.laue_classes import LAUE_CLASS_SPACE_GROUPS

        wanted = set(self.synthetic_groups or range(1, 231))
        rng = np.random.default_rng([self.seed, 11])
        chosen: dict[str, list[int]] = {}
        for laue, numbers in LAUE_CLASS_SPACE_GROUPS.items():
            groups = [n for n in numbers if n in wanted]
            limit = self.groups_per_laue_class
            if limit is not None and len(groups) > limit:
                groups = sorted(int(g) for g in rng.choice(groups, size=limit, replace=False))
            if groups:
                chosen[laue] = groups
        return chosen

    def voltage_settings(self) -> list[tuple[str, SimulationSettings]]:
        """``(variant, master settings)`` per beam energy: ``default`` at the simulation's own
        voltage, then one ``kvNN`` variant per further beam energy."""
        from simulate.variants import DEFAULT_VARIANT, voltage_variant_name

        extra = [e for e in self.beam_energies_kv if e != self.simulation.voltage_kv]
        return [(DEFAULT_VARIANT, self.simulation)] + [
            (voltage_variant_name(kv), self.simulation.at_voltage(kv)) for kv in extra
        ]

    def training_config(self) -> SupervisedConfig:
        """The training settings with the seed (``training_seed`` when set) and, when the recipe
        has further beam energies, their variants added to the ones read."""
        seed = self.seed if self.training_seed is None else self.training_seed
        variants = list(self.training.variants)
        variants += [v for v, _ in self.voltage_settings()[1:] if v not in variants]
        return self.training.refine(seed=seed, variants=tuple(variants))

    def refine(self, **changes: object) -> Recipe:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def scaled(self, factor: int, workers: int = 1, use_gpu: bool = False) -> Recipe:
        """The same recipe ``factor`` times larger (decorated and synthetic crystals, patterns
        per material, epochs) on ``workers`` Ray Train workers, with GPUs when ``use_gpu``."""
        if factor < 1:
            raise ValueError(f"--scale {factor}: must be >= 1")
        training = self.training.refine(
            patterns_per_material=self.training.patterns_per_material * factor,
            epochs=self.training.epochs * factor,
            num_workers=workers,
            use_gpu=use_gpu,
        )
        return self.refine(
            decorated_per_type=self.decorated_per_type * factor,
            synthetic_per_laue_class=self.synthetic_per_laue_class * factor,
            training=training,
        )


CPU_SIMULATION = SimulationSettings(
    npx=64, dmin_nm=0.05, energy_min_kev=15.0, energy_max_kev=20.0, energy_step_kev=5.0,
    bethe_strong=4.0, bethe_weak=8.0, bethe_cutoff=50.0, mc_electrons=20_000,
    precision="single", device="cpu",
)  # fmt: skip
"""Masters a 2-core machine makes in seconds each: npx 64 (129 px Lambert sides, matched to a
64 px input so bands show no aliasing steps), reflections down to d = 0.05 nm as the paper's (at
0.1 nm the fine high-order lines real patterns show are missing, and a model takes them for the
many bands of Pm-3n), two energies, loose Bethe thresholds."""

LAB_PC = (0.5, 0.3, 0.6)
"""Bruker pattern centre of the lab recipes' detector: a ~80 deg wide field (PCz 0.6) with the
centre in the upper half of the screen, as on a 70-deg tilted sample in most SEMs."""

LAB_PC_RANGE = ((0.35, 0.65), (0.15, 0.45), (0.45, 0.8))
"""Pattern centres the lab recipes train across (Bruker PCx, PCy, PCz): the geometries of common
microscopes (kikuchipy's Ni scan: 0.425, 0.213, 0.501)."""

CPU_TRAINING = SupervisedConfig().refine(
    arch="resnet18", image_size=64, detector_shape=(72, 72), epochs=12, batch_size=32, lr=0.01,
    patterns_per_material=48,
)  # fmt: skip
"""ResNet18 at 64 px (72 px detector renders resized to 65 px, then a random 64 px crop: the
paper's 229/224), SGD lr 0.01, batch 32, 48 patterns per material and epoch: what a 2-core
machine trains on ~170 materials in about 15 minutes."""

SYSTEMS_SIMULATION = CPU_SIMULATION.refine(npx=48, dmin_nm=0.12, energy_min_kev=20.0)
"""The cubic recipe's masters at npx 48, d >= 0.12 nm and one energy (20 keV): a low-symmetry
master folds fewer directions and a synthetic cell has more reflections, so at npx 64,
d >= 0.05 nm and two energies 450 crystals of all systems take ~4x the 2-hour budget on 2 cores;
npx 48 costs ~0.55x npx 64, and d >= 0.12 nm instead of 0.1 (about 0.6x the reflections) buys
the third build's 1.5x materials: its second build under-fitted less than it failed to
generalise (docs/RESULTS.md)."""

SYSTEMS_SYNTHETIC = SyntheticParams(
    elements=WIDE_POOL,
    n_elements=2,
    max_wyckoff=3,
    volume_per_atom=(10.0, 30.0),
    max_atoms=16,
    max_axis_ratio=4.0,
)
"""Few atoms, small cells (at most 16 atoms in the conventional cell, edges within 4x of each
other), two elements drawn from the wide pool (Z 13-82): Ia-3d, whose smallest orbit has 16
sites, yields none. The first build allowed 24 atoms: the trigonal and hexagonal cells near that
size took up to 5 min per master and 3/4 of the simulation time."""

CUBIC_LAB = Recipe(
    name="cubic-lab",
    description="cubic-cpu trained for lab microscopes: wide fields of view (PCz "
    "0.45-0.8), pattern centres across the screen, camera degradations down to the "
    "signal-to-noise of real binned patterns, weaker and noisier away from the centre",
    simulation=CPU_SIMULATION,
    training=CPU_TRAINING.refine(
        epochs=40, pc=LAB_PC, pc_range=LAB_PC_RANGE, degrade="lab-falloff"
    ),
    seed=1,
)
"""The shipped cubic model's recipe (``train/shipped_models/cubic-lab``)."""


RECIPES: dict[str, Recipe] = {
    "cubic-cpu": Recipe(
        name="cubic-cpu",
        description="five disordered cubic groups; 16 prototypes + 192 decorated crystals; "
        "ResNet18 at 64 px; builds on 2 CPU cores",
        simulation=CPU_SIMULATION,
        training=CPU_TRAINING,
        seed=1,
    ),
    "cubic-lab": CUBIC_LAB,
    "systems-lab": Recipe(
        name="systems-lab",
        description="Laue class (11, disordered label) of any crystal: ~48 synthetic crystals "
        "per Laue class over all 230 groups + bundled real phases; lab detector; 2 CPU cores",
        decorated_per_type=0,
        noncubic_prototypes=True,
        synthetic_per_laue_class=48,
        groups_per_laue_class=24,
        synthetic=SYSTEMS_SYNTHETIC,
        classes=None,
        simulation=SYSTEMS_SIMULATION,
        training=CPU_TRAINING.refine(
            label="disordered_laue_class",
            epochs=20,
            patterns_per_material=36,
            pc=LAB_PC,
            pc_range=LAB_PC_RANGE,
            degrade="lab-dim",
        ),  # fmt: skip
        holdout_fraction=0.2,
        unseen_group_fraction=0.15,
        evaluation_patterns=50,
        calibration_patterns=40,
        out_of_class=(),
        seed=3,
    ),
    "cubic-lab-kv": CUBIC_LAB.refine(
        name="cubic-lab-kv",
        description="cubic-lab trained across beam energies: every crystal simulated at 15, "
        "20, 25 and 30 kV, each training pattern's energy drawn among them",
        beam_energies_kv=(15.0, 25.0, 30.0),
    ),
    "cubic-lab-outside": CUBIC_LAB.refine(
        name="cubic-lab-outside",
        description="cubic-lab with a sixth class, 'outside', trained on synthetic crystals of "
        "the ten other Laue classes: a phase of another symmetry can be called so",
        synthetic_per_laue_class=3,
        synthetic=SYSTEMS_SYNTHETIC,
        synthetic_groups=tuple(range(1, 207)),
        groups_per_laue_class=3,
        training=CUBIC_LAB.training.refine(
            label=scoped_label("disordered_spacegroup", PAPER_CLASSES)
        ),
    ),
    "tiny": Recipe(
        name="tiny",
        description="end-to-end check in about two minutes (tests): 3 types, tiny masters",
        prototypes=False,
        decorated_per_type=3,
        elements=("Al", "Ni", "W", "Mo", "Si", "Ge"),
        structure_types=("A1", "A2", "A4"),
        simulation=CPU_SIMULATION.refine(
            npx=16, dmin_nm=0.2, energy_min_kev=20.0, mc_electrons=2_000
        ),
        training=SupervisedConfig().refine(
            arch="resnet10",
            image_size=32,
            detector_shape=(32, 32),
            epochs=1,
            batch_size=8,
            lr=0.01,
            patterns_per_material=8,
        ),  # fmt: skip
        holdout_fraction=0.34,
        evaluation_patterns=8,
        calibration_patterns=8,
        out_of_class=("Mg",),
        out_of_class_patterns=8,
    ),
}


def recipe(name: str) -> Recipe:
    """The named recipe; an unknown name is a one-line error listing the known ones."""
    if name not in RECIPES:
        raise ValueError(f"recipe {name!r}: unknown; known: {', '.join(RECIPES)}")
    return RECIPES[name]
