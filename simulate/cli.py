"""``ebsdlake simulate`` and ``ebsdlake lake import-emsoft``.

infra's CLI calls :func:`register` (stage commands) and :func:`register_lake_import` (the
``lake`` command group); handlers read ``args.lake``, ``args.storage_options`` and
``args.cfg`` that infra resolves before dispatch.
"""

from __future__ import annotations

import argparse
from typing import Any

from simulate.settings import SimulationSettings


def _cfg_section(args: argparse.Namespace, name: str) -> dict[str, Any]:
    cfg = getattr(args, "cfg", None)
    section = getattr(cfg, name, None) if cfg is not None else None
    return dict(section or {})


def settings_from_args(args: argparse.Namespace) -> SimulationSettings:
    """Settings: config ``[simulate]`` section, then the command-line flags."""
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
        mc_file=args.mc_file,
        precision=args.precision,
    )


def simulate_command(args: argparse.Namespace) -> int:
    """Handler of ``ebsdlake simulate``: run a campaign, exit 1 if any master failed."""
    from simulate.campaign import run_campaign

    section = _cfg_section(args, "simulate")
    ray_cfg = _cfg_section(args, "ray")
    settings = settings_from_args(args)
    time_limit = args.time_limit if args.time_limit is not None else section.get("time_limit_s")
    retries = args.max_retries if args.max_retries is not None else section.get("max_retries", 2)
    summary = run_campaign(
        args.lake,
        getattr(args, "storage_options", None),
        settings,
        material_ids=args.materials or None,
        variants=args.variants,
        source=args.source,
        spacegroups=args.spacegroups or None,
        retry_failed=args.retry_failed,
        seed=args.seed,
        num_actors=args.num_actors,
        cpus_per_actor=args.cpus_per_actor,
        time_limit_s=float(time_limit or 43_200),
        max_retries=int(retries),
        ray_address=ray_cfg.get("address") or None,
        ray_num_cpus=int(ray_cfg.get("num_cpus") or 0) or None,
        progress=not args.quiet,
    )
    if args.quiet:
        print(
            f"simulate: {summary.completed} complete, {len(summary.failed)} failed, "
            f"{summary.skipped_complete} already complete"
        )
    return 0 if summary.ok else 1


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``simulate`` to the ``ebsdlake`` command."""
    p = subparsers.add_parser(
        "simulate",
        help="simulate master patterns of ingested structures into the lake (Ray farm)",
        description=(
            "Run the (material, B-factor variant) simulations that the lake is missing on Ray "
            "actors (one per GPU, else CPU actors). Complete masters are skipped, so a re-run "
            "finishes an interrupted campaign. Defaults: the config's [simulate] section, else "
            "the paper (20 keV, 10-20 keV bins, 70 deg, npx 300, dmin 0.05 nm, Bethe 8/50/100)."
        ),
    )
    sel = p.add_argument_group("selection")
    sel.add_argument("--materials", nargs="+", metavar="ID", help="material ids (default: all)")
    sel.add_argument("--source", help="only structures from this source (mp, prototype, ...)")
    sel.add_argument(
        "--spacegroups", nargs="+", type=int, metavar="N", help="only these space groups"
    )
    sel.add_argument(
        "--variants",
        type=int,
        default=0,
        metavar="N",
        help="random B-factor variants (0.005-0.011 nm^2 per site) besides the default",
    )
    sel.add_argument("--seed", type=int, default=0, help="seed of the random B-factors")
    sel.add_argument("--retry-failed", action="store_true", help="run failed masters again")
    phys = p.add_argument_group("physics")
    phys.add_argument("--engine", choices=("dynamical", "emsoft"), default=None)
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
    phys.add_argument("--precision", choices=("double", "single"), default=None)
    farm = p.add_argument_group("farm")
    farm.add_argument("--device", help="auto (GPU if the cluster has one), cpu, cuda")
    farm.add_argument("--num-actors", type=int, help="simulation actors (default: GPUs or CPUs)")
    farm.add_argument("--cpus-per-actor", type=float, default=1.0, help="CPUs per CPU actor")
    farm.add_argument("--time-limit", type=float, metavar="S", help="per-job limit in seconds")
    farm.add_argument("--max-retries", type=int, help="retries of a job whose actor died")
    p.add_argument("--quiet", action="store_true", help="no progress bar; one summary line")
    p.set_defaults(func=simulate_command)
    return p


def import_emsoft_command(args: argparse.Namespace) -> int:
    """Handler of ``ebsdlake lake import-emsoft``."""
    from lake import Lake
    from simulate.importer import import_emsoft

    lake = Lake.open(args.lake, getattr(args, "storage_options", None))
    for item in import_emsoft(lake, args.files, args.material_id, args.variant):
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
