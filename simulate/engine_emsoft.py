"""The emsoft engine: drive EMsoft's Monte Carlo and ``EMEBSDmaster`` where a site has them.

Writes the crystal (``.xtal``) and the namelists from the same
:class:`~simulate.settings.SimulationSettings` the dynamical engine uses, runs the programs in
a scratch folder and reads the master back (:mod:`simulate.emsoft_io`).

* Monte Carlo: ``EMMC`` (OpenMP; the default, right for CPU nodes) or ``EMMCOpenCL``
  (``EMSOFT_MC=EMMCOpenCL``, for an OpenCL GPU). With ``settings.mc_file`` no Monte Carlo
  runs: that EMsoft Monte Carlo file is copied in (its master-pattern groups dropped) and
  ``EMEBSDmaster`` computes on it, so two engines can share one Monte Carlo.
* Configuration: EMsoft finds its resources under ``EMsoftpathname`` and resolves
  ``xtalname``/``dataname`` against the folders in ``EMsoftConfig.json``. The engine takes
  ``EMsoftpathname`` from ``$EMSOFTPATHNAME``, else from the ``EMsoftConfig.json`` next to the
  program folder (``$EMSOFT_BIN/../EMsoftConfig.json``, written by ``make emsoft``), else
  from ``~/.config/EMsoft/EMsoftConfig.json``; each run gets a private copy of that file
  (scratch ``HOME``) and environment whose data folders are the scratch folder, so concurrent
  runs never share files.
* Failures: EMsoft's ``FatalError`` ends a program with exit status 0, so a run counts as
  failed when the status is not 0, when the output holds ``Fatal error`` or when the output
  file lacks what the next step reads; the message carries EMsoft's own lines. A master with
  more than 1 % of a plane exactly zero (EMsoft's symmetry fill skips point operators with
  translations, e.g. P4_2/mnm) is a failure too, unless ``check_filled=False``. A program past
  ``timeout_s`` is killed with its process group. Programs die with the calling process
  (``PR_SET_PDEATHSIG``), so a killed Ray actor leaves no orphans.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from simulate.emsoft_inputs import (
    bethe_namelist,
    emmc_namelist,
    master_namelist,
    mc_namelist,
    prepare_mc_file,
    write_xtal,
)
from simulate.emsoft_io import (
    read_master,
)
from simulate.engine_base import MasterResult, ProgressCallback, bfactor_attrs
from simulate.errors import EmsoftFileError, EngineUnavailableError, SimulateError
from simulate.settings import SimulationSettings
from simulate.structure import StructureLike, as_record, site_bfactors

#: Monte Carlo programs, chosen with ``$EMSOFT_MC`` (default the first).
MC_PROGRAMS = ("EMMC", "EMMCOpenCL")
MASTER_PROGRAM = "EMEBSDmaster"
#: The default program pair (``EMSOFT_MC`` unset).
PROGRAMS = (MC_PROGRAMS[0], MASTER_PROGRAM)
INSTALL_HINT = (
    "build EMsoft with `make emsoft` and set EMSOFT_BIN to the folder it prints (or put "
    "EMsoft 5's bin folder on PATH); or use --engine dynamical"
)
#: Lines of program output kept in an error message.
ERROR_LINES = 6


def mc_program(environ: Mapping[str, str] | None = None) -> str:
    """The Monte Carlo program ``$EMSOFT_MC`` names (``EMMC`` by default).

    Raises
    ------
    EngineUnavailableError
        ``EMSOFT_MC`` names something else.
    """
    env = os.environ if environ is None else environ
    name = env.get("EMSOFT_MC", "") or MC_PROGRAMS[0]
    if name not in MC_PROGRAMS:
        raise EngineUnavailableError(
            f"emsoft engine: EMSOFT_MC={name!r}: expected one of {', '.join(MC_PROGRAMS)}"
        )
    return name


def find_programs(
    environ: Mapping[str, str] | None = None, with_mc: bool = True
) -> dict[str, Path]:
    """Absolute paths of the EMsoft programs from ``$EMSOFT_BIN`` or ``PATH``: the Monte
    Carlo program of :func:`mc_program` (unless ``with_mc`` is false) and ``EMEBSDmaster``.

    A relative ``$EMSOFT_BIN`` (``.emsoft/bin``) is taken from the current directory here:
    the programs run in a scratch folder, where a relative path would not find them.

    Raises
    ------
    EngineUnavailableError
        ``$EMSOFT_BIN`` is set but no folder; or naming the programs not found, where it
        looked, and what to build and set.
    """
    env = os.environ if environ is None else environ
    given = env.get("EMSOFT_BIN", "")
    folder = Path(given).expanduser().absolute() if given else None
    shown = given if folder is None or str(folder) == given else f"{given} = {folder}"
    if folder is not None and not folder.is_dir():
        raise EngineUnavailableError(
            f"emsoft engine: EMSOFT_BIN={shown}: no such folder; {INSTALL_HINT}"
        )
    wanted = ((mc_program(env),) if with_mc else ()) + (MASTER_PROGRAM,)
    found: dict[str, Path] = {}
    for program in wanted:
        candidate = folder / program if folder is not None else None
        if candidate is not None and candidate.is_file() and os.access(candidate, os.X_OK):
            found[program] = candidate
            continue
        on_path = shutil.which(program, path=env.get("PATH"))
        if on_path:
            found[program] = Path(on_path).absolute()
    missing = [p for p in wanted if p not in found]
    if missing:
        where = f"$EMSOFT_BIN ({shown})" if folder is not None else "$EMSOFT_BIN (unset)"
        raise EngineUnavailableError(
            f"emsoft engine: {', '.join(missing)} not found in {where} or PATH; {INSTALL_HINT}"
        )
    return found


def base_config(
    programs: Mapping[str, Path], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """EMsoft's configuration for these programs, with ``EMsoftpathname`` resolved.

    Raises
    ------
    EngineUnavailableError
        No ``EMsoftpathname`` anywhere, or one without ``resources/`` (EMsoft would stop).
    """
    env = os.environ if environ is None else environ
    folder = Path(next(iter(programs.values()))).parent
    candidates = [
        folder.parent / "EMsoftConfig.json",
        Path(env.get("HOME", str(Path.home()))) / ".config" / "EMsoft" / "EMsoftConfig.json",
    ]
    config: dict[str, Any] = {}
    for path in candidates:
        if path.is_file():
            try:
                config = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            break
    home = env.get("EMSOFTPATHNAME") or config.get("EMsoftpathname", "")
    if home:  # EMsoft runs in a scratch folder: a relative path would point there
        home = str(Path(home).expanduser().absolute())
    if not home:
        raise EngineUnavailableError(
            "emsoft engine: EMsoftpathname unknown (no EMSOFTPATHNAME, no EMsoftConfig.json "
            f"in {candidates[0].parent} or ~/.config/EMsoft); {INSTALL_HINT}"
        )
    if not (Path(home) / "resources").is_dir():
        raise EngineUnavailableError(
            f"emsoft engine: EMsoftpathname {home} has no resources/ folder; {INSTALL_HINT}"
        )
    config["EMsoftpathname"] = str(home).rstrip("/") + "/"
    return config


def omp_threads(environ: Mapping[str, str] | None = None) -> int:
    """Threads for EMsoft's OpenMP programs: ``$OMP_NUM_THREADS``, else the usable CPUs."""
    env = os.environ if environ is None else environ
    try:
        value = int(env.get("OMP_NUM_THREADS", "0").split(",")[0])
    except ValueError:
        value = 0
    if value > 0:
        return value
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class EmsoftEngine:
    """Runs EMsoft's Monte Carlo and master-pattern programs for one job at a time.

    Parameters
    ----------
    timeout_s
        Wall-clock limit per program in seconds (None: none; the Ray farm has its own).
    keep_dir
        Keep every run's scratch folder under this folder (inputs, outputs, ``*.log``)
        instead of deleting it; for debugging and cross-validation.
    check_filled
        Refuse a master EMsoft left partly unfilled (more than 1 % of a plane exactly zero,
        as for P4_2/mnm; :func:`~simulate.emsoft_io.check_master_filled`), so it never
        enters a lake. Cross-validation turns it off to diagnose such masters.
    """

    name = "emsoft"

    def __init__(
        self,
        timeout_s: float | None = None,
        keep_dir: str | Path | None = None,
        check_filled: bool = True,
    ):
        self.timeout_s = timeout_s
        # absolute: the scratch folder under it is EMsoft's data folder, read from inside it
        self.keep_dir = Path(keep_dir).absolute() if keep_dir is not None else None
        self.check_filled = check_filled

    def version(self) -> str:
        """``"EMsoft"`` plus the program folder (the file's header holds the version)."""
        try:
            return f"EMsoft ({find_programs()[MASTER_PROGRAM].parent})"
        except EngineUnavailableError:
            return "EMsoft (not installed)"

    def check_available(self, settings: SimulationSettings) -> None:
        """Fail at once when the programs or EMsoft's configuration are absent."""
        programs = find_programs(with_mc=settings.mc_file is None)
        base_config(programs)

    def run(
        self,
        structure: StructureLike,
        settings: SimulationSettings,
        bfactors_nm2: Sequence[float] | None = None,
        progress: ProgressCallback | None = None,
    ) -> MasterResult:
        """Write inputs, run the Monte Carlo (unless ``settings.mc_file``) and
        ``EMEBSDmaster``, read the master; attrs record programs and namelists."""
        programs = find_programs(with_mc=settings.mc_file is None)
        config = base_config(programs)
        started = time.perf_counter()
        record = as_record(structure)
        bfactors = list(bfactors_nm2) if bfactors_nm2 is not None else site_bfactors(record)
        if self.keep_dir is not None:
            self.keep_dir.mkdir(parents=True, exist_ok=True)
        scratch = tempfile.mkdtemp(prefix="ebsdlake-emsoft-", dir=self.keep_dir)
        try:
            work = Path(scratch)
            threads = omp_threads()
            namelists: dict[str, str] = {}
            if settings.mc_file is None:
                xtal = "crystal.xtal"
                mc = next(p for p in programs if p in MC_PROGRAMS)
                if mc == "EMMC":
                    text = emmc_namelist(settings, xtal, "mc.h5", threads)
                else:
                    text = mc_namelist(settings, xtal, "mc.h5")
                namelists[f"{mc}.nml"] = text
            else:
                mc = None
                xtal = prepare_mc_file(settings.mc_file, work / "mc.h5")
            write_xtal(work / xtal, record, bfactors)
            namelists["EMEBSDmaster.nml"] = master_namelist(settings, "mc.h5", threads)
            namelists["BetheParameters.nml"] = bethe_namelist(settings)
            for name, text in namelists.items():
                (work / name).write_text(text)
            env = private_environment(work, config, threads)
            steps = ([mc] if mc else []) + [MASTER_PROGRAM]
            for step, program in enumerate(steps, start=1):
                run_program(programs[program], f"{program}.nml", work, env, self.timeout_s)
                if progress is not None:
                    progress(step, len(steps))
            try:
                result = read_master(work / "mc.h5", check_filled=self.check_filled)
            except EmsoftFileError as exc:
                raise SimulateError(f"emsoft engine: {exc}") from None
        finally:
            if self.keep_dir is None:
                shutil.rmtree(scratch, ignore_errors=True)
        result.attrs.update(
            {
                **settings.to_attrs(),
                "engine_version": result.attrs.get("engine_version", "EMsoft"),
                "engine": self.name,
                "emsoft_programs": steps,
                "emsoft_namelists": namelists,
                "bfactors_nm2": bfactor_attrs(record, bfactors),
                "wall_time_s": round(time.perf_counter() - started, 3),
            }
        )
        return result


def private_environment(work: Path, config: Mapping[str, Any], threads: int) -> dict[str, str]:
    """Environment whose ``HOME`` holds an EMsoftConfig.json with data folders at ``work``.

    The path variables EMsoft reads before its configuration file (``EMSOFTPATHNAME``,
    ``EMDATAPATHNAME``, ``EMXTALFOLDERPATHNAME``, ``EMTMPPATHNAME``) are set too.
    """
    folder = f"{work}/"
    private = {
        **config,
        "EMdatapathname": folder,
        "EMXtalFolderpathname": folder,
        "EMtmppathname": folder,
        "EMNotify": "Off",
    }
    home = work / "home"
    target = home / ".config" / "EMsoft"
    target.mkdir(parents=True, exist_ok=True)
    (target / "EMsoftConfig.json").write_text(json.dumps(private, indent=2))
    return {
        **os.environ,
        "HOME": str(home),
        "EMSOFTPATHNAME": str(config["EMsoftpathname"]),
        "EMDATAPATHNAME": folder,
        "EMXTALFOLDERPATHNAME": folder,
        "EMTMPPATHNAME": folder,
        "OMP_NUM_THREADS": str(threads),
        # stdout goes to a log file, which gfortran buffers: unbuffered, a crash keeps
        # EMsoft's last messages (and stdout/stderr stay in order)
        "GFORTRAN_UNBUFFERED_PRECONNECTED": "y",
    }


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """In the child: ask Linux to SIGKILL it when the parent thread dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):  # 1 = PR_SET_PDEATHSIG
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def emsoft_error_lines(output: str, limit: int = ERROR_LINES) -> str:
    """EMsoft's own error lines from a program's output, joined on one line.

    ``Fatal error`` lines first, then HDF5/OpenCL error reports (``Error code``, ``returned
    by routine``, ``error``) and a crash signal; with none of these, the last lines.
    """
    lines = [" ".join(line.split()) for line in output.splitlines()]
    lines = [
        line
        for line in lines
        if line and not line.startswith("#") and not line.startswith("Backtrace for this")
    ]

    def rank(line: str) -> int:
        low = line.lower()
        if "fatal error" in low:
            return 0
        if "error" in low or "returned by routine" in low:
            return 1
        if "program received signal" in low:
            return 2
        return 9

    marked = sorted((rank(line), i) for i, line in enumerate(lines) if rank(line) < 9)
    picked = [lines[i] for _, i in marked[:limit]] if marked else lines[-limit:]
    return " | ".join(picked)[:800]


def run_program(
    program: Path,
    namelist: str,
    work: Path,
    env: Mapping[str, str],
    timeout_s: float | None = None,
) -> str:
    """Run one EMsoft program on ``namelist`` in ``work``; its output goes to
    ``work/<program>.log`` and is returned.

    Raises
    ------
    SimulateError
        Non-zero exit, ``Fatal error`` in the output (EMsoft then exits 0), a crash, or a
        time-out; the message names the program and quotes EMsoft's lines.
    """
    log_path = work / f"{program.name}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [str(program), namelist],
            cwd=work,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            output = log_path.read_text(errors="replace")
            raise SimulateError(
                f"emsoft engine: {program.name} timed out after {timeout_s:g} s; last output: "
                f"{emsoft_error_lines(output, limit=3)}"
            ) from None
        except BaseException:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
    output = log_path.read_text(errors="replace")
    failed = code != 0 or "fatal error" in output.lower() or "ended abnormally" in output
    if failed:
        how = f"exited {code}" if code >= 0 else f"killed by signal {-code}"
        if code == 0:
            how = "stopped with an error"
        raise SimulateError(f"emsoft engine: {program.name} {how}: {emsoft_error_lines(output)}")
    return output
