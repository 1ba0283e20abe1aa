"""``ebsdlake simulate`` and ``ebsdlake lake import-emsoft``.

infra's CLI calls :func:`register` (the stage command and its config section) and
:func:`register_lake_import` (the ``lake`` command group); handlers read ``args.lake``, ``args.storage_options`` and
``args.cfg`` that infra resolves before dispatch.
"""

from __future__ import annotations

import argparse
from typing import Any

from simulate.errors import SimulateInputError, setting_text
from simulate.farm import FarmOptions
from simulate.settings import ENGINES, PRECISIONS, SimulationSettings
from simulate.variants import RANDOM_B_RANGE_NM2

#: The defaults the flags fall back to (after the config): written once on the dataclasses.
_PAPER = SimulationSettings()
_FARM = FarmOptions()


def _cfg_section(args: argparse.Namespace, name: str) -> dict[str, Any]:
    cfg = getattr(args, "cfg", None)
    section = getattr(cfg, name, None) if cfg is not None else None
    return dict(section or {})


def _origin(args: argparse.Namespace, section: str, key: str) -> str:
    """Where the config value ``[section] key`` came from (file, variable), for messages."""
    cfg = getattr(args, "cfg", None)
    return cfg.origin(section, key) if cfg is not None else f"[{section}] {key}"


def _option(args: argparse.Namespace, flag: str, section: str, key: str, default: Any):
    """``(value, name)``: the flag's value and ``--flag`` when given, else the config's."""
    value = getattr(args, flag.removeprefix("--").replace("-", "_"))
    if value is not None:
        return value, flag
    return _cfg_section(args, section).get(key, default), _origin(args, section, key)


def _checked_mc_file(args: argparse.Namespace) -> str | None:
    """The Monte Carlo file (flag, else ``[simulate] mc_file``) checked and made absolute."""
    from simulate.emsoft_io import check_mc_file

    path, where = _option(args, "--mc-file", "simulate", "mc_file", None)
    return str(check_mc_file(path, where)) if path else None


def settings_from_args(args: argparse.Namespace) -> SimulationSettings:
    """Settings: config ``[simulate]`` section, then the command-line flags.

    A Monte Carlo file (``--mc-file`` or ``[simulate] mc_file``) is checked here, before any
    job is planned, and passed on as an absolute path.
    """
    return SimulationSettings.from_config(
        _cfg_section(args, "simulate"),
        engine=args.engine,
        npx=args.npx,
        dmin_nm=args.dmin,
        energies=args.energies,
        bethe=args.bethe,
        voltage_kv=args.voltage,
        sample_tilt_deg=args.tilt,
        device=args.device,
        mc_electrons=args.mc_electrons,
        mc_file=_checked_mc_file(args),
        precision=args.precision,
    )


def _farm_options(args: argparse.Namespace) -> tuple[float, int, int]:
    """``(time limit s, max retries, Ray CPUs)`` from the flags and the config, each checked
    (:func:`~simulate.campaign.check_farm_options`) with the name the user gave it."""
    from simulate.campaign import check_farm_options

    time_limit, time_where = _option(
        args, "--time-limit", "simulate", "time_limit_s", _FARM.time_limit_s
    )
    retries, retries_where = _option(
        args, "--max-retries", "simulate", "max_retries", _FARM.max_retries
    )
    check_farm_options(
        time_limit_s=time_limit,
        max_retries=retries,
        num_actors=args.num_actors,
        cpus_per_actor=args.cpus_per_actor,
        seed=args.seed,
        variants=args.variants,
        names={
            "time_limit_s": time_where,
            "max_retries": retries_where,
            "num_actors": "--num-actors",
            "cpus_per_actor": "--cpus-per-actor",
            "seed": "--seed",
            "variants": "--variants",
        },
    )
    num_cpus = int(_cfg_section(args, "ray").get("num_cpus") or 0)
    if num_cpus < 0:
        where = setting_text(_origin(args, "ray", "num_cpus"), num_cpus)
        raise SimulateInputError(f"{where}: must be >= 0 (0: all CPUs)")
    return float(time_limit), int(retries), num_cpus


def _material_ids(args: argparse.Namespace) -> list[str] | None:
    """``--materials`` as lake ids: a formula or name that names one material is accepted
    (``Ni`` for ``proto-Ni``); one that names several or none is refused listing the ids."""
    if not args.materials:
        return None
    from lake import Lake
    from lake.material_ids import resolve_material_ids

    lake = Lake.open(args.lake, getattr(args, "storage_options", None), mode="r")
    return resolve_material_ids(lake, args.materials, "--materials")


def simulate_command(args: argparse.Namespace) -> int:
    """Handler of ``ebsdlake simulate``: run a campaign, exit 1 if any master failed.

    Options, the Monte Carlo file, the lake and the selection are checked before Ray starts.
    """
    from simulate.campaign import run_campaign

    time_limit, retries, num_cpus = _farm_options(args)
    settings = settings_from_args(args)
    ray_cfg = _cfg_section(args, "ray")
    summary = run_campaign(
        args.lake,
        getattr(args, "storage_options", None),
        settings,
        material_ids=_material_ids(args),
        variants=args.variants,
        source=args.source,
        spacegroups=args.spacegroups or None,
        retry_failed=args.retry_failed,
        replace=args.replace,
        variant_name=args.variant_name,
        seed=args.seed,
        num_actors=args.num_actors,
        cpus_per_actor=args.cpus_per_actor,
        time_limit_s=time_limit,
        max_retries=retries,
        ray_address=ray_cfg.get("address") or None,
        ray_num_cpus=num_cpus or None,
        progress=not args.quiet,
    )
    if args.quiet:
        print(
            f"simulate: {summary.completed} complete, {len(summary.failed)} failed, "
            f"{summary.skipped_complete} already complete"
        )
    return 0 if summary.ok else 1


def _paper_summary() -> str:
    """The paper's settings in words, from :class:`SimulationSettings` defaults."""
    s = _PAPER
    return (
        f"{s.voltage_kv:g} keV, {s.energy_min_kev:g}-{s.energy_max_kev:g} keV bins, "
        f"{s.sample_tilt_deg:g} deg, npx {s.npx}, dmin {s.dmin_nm:g} nm, "
        f"Bethe {s.bethe_strong:g}/{s.bethe_weak:g}/{s.bethe_cutoff:g}"
    )


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``simulate`` to the ``ebsdlake`` command (its ``[simulate]`` config section is
    registered by the application from ``simulate.config_section``)."""
    p = subparsers.add_parser(
        "simulate",
        help="simulate master patterns of ingested structures into the lake (Ray farm)",
        description=(
            "Run the (material, B-factor variant) simulations that the lake is missing on Ray "
            "actors (one per GPU, else CPU actors). Complete masters are skipped, so a re-run "
            "finishes an interrupted campaign. Defaults: the config's [simulate] section, else "
            f"the paper ({_paper_summary()})."
        ),
    )
    sel = p.add_argument_group("selection")
    sel.add_argument(
        "--materials", nargs="+", metavar="ID",
        help="material ids or formulas that name one material (default: all)",
    )  # fmt: skip
    sel.add_argument("--source", help="only structures from this source (mp, prototype, ...)")
    sel.add_argument(
        "--spacegroups", nargs="+", type=int, metavar="N", help="only these space groups"
    )
    sel.add_argument(
        "--variants",
        type=int,
        default=0,
        metavar="N",
        help=(
            f"random B-factor variants ({RANDOM_B_RANGE_NM2[0]}-{RANDOM_B_RANGE_NM2[1]} nm^2 "
            "per site) besides the default"
        ),
    )
    sel.add_argument("--seed", type=int, default=0, help="seed of the random B-factors")
    sel.add_argument("--retry-failed", action="store_true", help="run failed masters again")
    sel.add_argument(
        "--replace",
        action="store_true",
        help="overwrite complete masters stored at other settings (default: stop and say so)",
    )
    sel.add_argument(
        "--variant-name",
        default="default",
        metavar="NAME",
        help="name of the structure-B variant (random ones: NAME-b01...), to keep masters at "
        "other settings beside the old ones (default: default)",
    )
    phys = p.add_argument_group("physics")
    phys.add_argument(
        "--engine", choices=ENGINES, default=None,
        help="dynamical (de-ebsd, default) or emsoft (EMsoft programs)",
    )  # fmt: skip
    phys.add_argument("--npx", type=int, help="Lambert half-width (2*npx+1 pixels per side)")
    phys.add_argument("--dmin", type=float, help="smallest d-spacing in nm")
    phys.add_argument("--energies", metavar="MIN:MAX:STEP", help="energy bins in keV, e.g. 10:20:1")
    phys.add_argument("--voltage", type=float, help="beam energy in keV")
    phys.add_argument("--tilt", type=float, help="sample tilt in degrees")
    phys.add_argument(
        "--bethe", nargs="+", type=float, metavar="C", help="Bethe strong weak [cutoff]"
    )
    phys.add_argument("--mc-electrons", type=int, help="Monte Carlo electrons (native MC)")
    phys.add_argument("--mc-file", help="use this EMsoft Monte Carlo file instead")
    phys.add_argument(
        "--precision", choices=PRECISIONS, default=None,
        help="engine arithmetic: double (default) or single",
    )  # fmt: skip
    farm = p.add_argument_group("farm")
    farm.add_argument("--device", help="auto (GPU if the cluster has one), cpu, cuda")
    farm.add_argument("--num-actors", type=int, help="simulation actors (default: GPUs or CPUs)")
    farm.add_argument(
        "--cpus-per-actor", type=float, default=_FARM.cpus_per_actor, help="CPUs per CPU actor"
    )
    farm.add_argument("--time-limit", type=float, metavar="S", help="per-job limit in seconds")
    farm.add_argument("--max-retries", type=int, help="retries of a job whose actor died")
    p.add_argument("--quiet", action="store_true", help="no progress bar; one summary line")
    p.set_defaults(func=simulate_command)
    return p


def import_emsoft_command(args: argparse.Namespace) -> int:
    """Handler of ``ebsdlake lake import-emsoft``: every file is checked before the lake is
    opened (and created when missing), so a rejected file leaves nothing behind."""
    from lake import Lake
    from simulate.importer import plan_import, write_imports

    planned = plan_import(args.files, args.material_id, args.variant)
    lake = Lake.open(args.lake, getattr(args, "storage_options", None), create=True)
    if lake.created:
        print(f"import-emsoft: created a new lake at {lake.url}")
    for item in write_imports(lake, planned):
        added = " (structure added)" if item.structure_added else ""
        print(f"imported {item.path} -> {item.material_id}/{item.variant}{added}")
    return 0


def register_lake_import(lake_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``import-emsoft`` to the ``ebsdlake lake`` command group."""
    p = lake_subparsers.add_parser(
        "import-emsoft",
        help="import EMsoft EBSD master-pattern HDF5 files into the lake",
        description=(
            "Read EMsoft master files (EMData/EBSDmaster/mLPNH|mLPSH, EkeVs, MCOpenCL accum_e) "
            "into master groups; the crystal is ingested when the lake lacks the material."
        ),
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="EMsoft master-pattern .h5 files")
    p.add_argument("--material-id", help="lake id of the material (default: the file name)")
    p.add_argument("--variant", help="variant name (default: default)")
    p.set_defaults(func=import_emsoft_command)
    return p
