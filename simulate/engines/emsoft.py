"""The emsoft engine: drive EMsoft's ``EMMCOpenCL`` and ``EMEBSDmaster`` where a site has them.

Writes the crystal (``.xtal``) and the three namelists from the same
:class:`~simulate.settings.SimulationSettings` the dynamical engine uses, runs the two
programs in a scratch folder and reads the master back (:mod:`simulate.emsoft_io`). EMsoft
resolves ``xtalname`` and ``dataname`` against the folders in its ``EMsoftConfig.json``; the
engine gives each run a private copy of that file (under a scratch ``HOME``) that points both
folders at the scratch folder, so concurrent runs never share files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from simulate.emsoft_io import (
    bethe_namelist,
    master_namelist,
    mc_namelist,
    read_master,
    write_xtal,
)
from simulate.engines.base import MasterResult, ProgressCallback, bfactor_attrs
from simulate.errors import EngineUnavailableError, SimulateError
from simulate.settings import SimulationSettings
from simulate.structure import site_bfactors

PROGRAMS = ("EMMCOpenCL", "EMEBSDmaster")
INSTALL_HINT = (
    "install EMsoft 5 (https://github.com/EMsoft-org/EMsoft), run EMsoftSetup once, and set "
    "EMSOFT_BIN to its bin folder (or put it on PATH); or use --engine dynamical"
)


def find_programs(environ: Mapping[str, str] | None = None) -> dict[str, Path]:
    """Paths of the EMsoft programs from ``$EMSOFT_BIN`` or ``PATH``.

    Raises
    ------
    EngineUnavailableError
        Naming the programs not found, where it looked, and what to install and set.
    """
    env = os.environ if environ is None else environ
    folder = env.get("EMSOFT_BIN", "")
    found: dict[str, Path] = {}
    for program in PROGRAMS:
        candidate = Path(folder) / program if folder else None
        if candidate is not None and candidate.is_file() and os.access(candidate, os.X_OK):
            found[program] = candidate
            continue
        on_path = shutil.which(program, path=env.get("PATH"))
        if on_path:
            found[program] = Path(on_path)
    missing = [p for p in PROGRAMS if p not in found]
    if missing:
        where = f"$EMSOFT_BIN ({folder})" if folder else "$EMSOFT_BIN (unset)"
        raise EngineUnavailableError(
            f"emsoft engine: {', '.join(missing)} not found in {where} or PATH; {INSTALL_HINT}"
        )
    return found


class EmsoftEngine:
    """Runs EMsoft's Monte Carlo and master-pattern programs for one job at a time."""

    name = "emsoft"

    def version(self) -> str:
        """``"EMsoft"`` plus the program folder (EMsoft prints its version in the output)."""
        try:
            return f"EMsoft ({find_programs()['EMEBSDmaster'].parent})"
        except EngineUnavailableError:
            return "EMsoft (not installed)"

    def check_available(self, settings: SimulationSettings) -> None:
        """Fail at once when the programs are absent."""
        find_programs()

    def run(
        self,
        structure: Mapping[str, Any],
        settings: SimulationSettings,
        bfactors_nm2: Sequence[float] | None = None,
        progress: ProgressCallback | None = None,
    ) -> MasterResult:
        """Write inputs, run ``EMMCOpenCL`` then ``EMEBSDmaster``, read the master."""
        programs = find_programs()
        started = time.perf_counter()
        bfactors = list(bfactors_nm2) if bfactors_nm2 is not None else site_bfactors(structure)
        with tempfile.TemporaryDirectory(prefix="ebsdlake-emsoft-") as scratch:
            work = Path(scratch)
            write_xtal(work / "crystal.xtal", structure, bfactors)
            (work / "EMMCOpenCL.nml").write_text(mc_namelist(settings, "crystal.xtal", "mc.h5"))
            (work / "EMEBSDmaster.nml").write_text(master_namelist(settings, "mc.h5"))
            (work / "BetheParameters.nml").write_text(bethe_namelist(settings))
            env = _private_config(work)
            for step, program in enumerate(PROGRAMS, start=1):
                _run(programs[program], f"{program}.nml", work, env)
                if progress is not None:
                    progress(step, len(PROGRAMS))
            result = read_master(work / "mc.h5")
        result.attrs.update(
            {
                **settings.to_attrs(),
                **{k: v for k, v in result.attrs.items() if k in ("engine_version",)},
                "engine": self.name,
                "bfactors_nm2": bfactor_attrs(structure, bfactors),
                "wall_time_s": round(time.perf_counter() - started, 3),
            }
        )
        return result


def _private_config(work: Path) -> dict[str, str]:
    """Environment whose ``HOME`` holds an EMsoftConfig.json pointing data paths at ``work``."""
    user = Path.home() / ".config" / "EMsoft" / "EMsoftConfig.json"
    config: dict[str, Any] = {}
    if user.is_file():
        try:
            config = json.loads(user.read_text())
        except (OSError, ValueError):
            config = {}
    config.update(
        {
            "EMdatapathname": f"{work}/",
            "EMXtalFolderpathname": f"{work}/",
            "EMtmppathname": f"{work}/",
        }
    )
    home = work / "home"
    target = home / ".config" / "EMsoft"
    target.mkdir(parents=True)
    (target / "EMsoftConfig.json").write_text(json.dumps(config, indent=2))
    return {**os.environ, "HOME": str(home)}


def _run(program: Path, namelist: str, work: Path, env: dict[str, str]) -> None:
    completed = subprocess.run(
        [str(program), namelist], cwd=work, env=env, capture_output=True, text=True
    )
    if completed.returncode != 0:
        tail = " ".join((completed.stderr or completed.stdout).split()[-40:])
        raise SimulateError(f"emsoft engine: {program.name} exited {completed.returncode}: {tail}")
