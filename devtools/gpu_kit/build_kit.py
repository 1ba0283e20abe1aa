"""Build the GPU session kit: ``.whl/`` holds what the device image lacks for the GPU jobs.

Run here (any Python >= 3.11 with pip and network access), from anywhere in the repo::

    python3 devtools/gpu_kit/build_kit.py

then hand ``.whl`` to the device call (``carry: [".whl"]``) whose command is
``bash devtools/gpu_kit/session.sh`` (see docs/PERFORMANCE.md, "GPU session kit").

What goes in. The device (Python 3.12, torch 2.11, numpy 2.5.2 and the packages listed in
the device notes) lacks these imports of the GPU jobs (``devtools/gpu_kit/bench_*.py``,
``scripts/validate_emsoft_ni.py``, ``tests/test_projection.py`` and our packages), found by
tracing every import of CPU runs of those jobs, Ray's own processes included:

* Ray core + Ray Train: ``ray`` and its one missing requirement ``jsonschema`` (with
  ``jsonschema-specifications``, ``referencing``, ``rpds-py``); Ray Train v2 refuses to start
  without ``pydantic`` (with ``pydantic-core``, ``annotated-types``, ``typing-inspection``);
  ``tensorboardX`` because ``ray[train]`` declares it (not imported on our paths; 90 kB).
* the lake: ``zarr``, ``numcodecs``, ``donfig``, ``google-crc32c``; the stream: ``dask``
  (with ``partd``, ``locket``).
* the engine and orientations: ``de-ebsd``, ``diffpy.structure`` (+ ``pycifrw`` with
  ``prettytable``, ``wcwidth``, ``ply``), ``orix``, ``spglib``.
* ``typing-extensions`` 4.16 (pydantic's floor) goes to ``.whl/fallback/``: the session script
  installs it only where the device's own copy is older.

Left out on purpose: torch, numpy and everything already on the device; kikuchipy (and
hyperspy, rosettasciio, diffsims...): the only thing the GPU jobs need from it is the EMsoft
Ni master file, copied to ``.whl/data/`` and named by ``$EBSDLAKE_NI_MASTER``; pymatgen,
pyxtal and mp-api (``ingest`` only; the smoke stage reports those modules as not in the kit);
s3fs/boto (local lakes only); de-ebsd's plotting requirements (anyplotlib, anywidget) and its
diffsims, and orix's pooch (data downloads), none imported on these paths.

Two wheels are repacked (same file names, RECORD rewritten with fresh hashes, so pip installs
them as usual): ray without ``ray/jars/`` (Java workers, 31 MB; Ray checks for the folder and
starts no Java worker without it) and without the dashboard's ``*.js.map`` source maps;
numcodecs with its extensions' DWARF debug sections removed (``strip --strip-debug``: 9.3 ->
~1.6 MB; code and dynamic symbols untouched).

The script fails when the kit plus what travels with every device call (git-tracked and
untracked-not-ignored files) exceeds 60 MiB (the tool's limit is 64 MiB).
"""

from __future__ import annotations

import argparse
import base64
import csv
import glob
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
KIT_DIR = ROOT / ".whl"
LIMIT_MIB = 60.0
NI_MASTER_NAME = "ni_mc_mp_20kv_uint8_gzip_opts9.h5"
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)


@dataclass(frozen=True)
class Pin:
    """One wheel of the kit: distribution name, exact version, and why it is there."""

    name: str
    version: str
    why: str
    fallback: bool = False  # install on the device only where its own copy is older


#: Versions are those of the project's .venv (checked by ``--check-venv``, on by default).
KIT: tuple[Pin, ...] = (
    Pin("ray", "2.60.0", "Ray core + Ray Train (repacked: no jars, no source maps)"),
    Pin("jsonschema", "4.26.0", "ray requirement"),
    Pin("jsonschema-specifications", "2025.9.1", "jsonschema requirement"),
    Pin("referencing", "0.37.0", "jsonschema requirement"),
    Pin("rpds-py", "2026.9.1", "jsonschema/referencing requirement"),
    Pin("pydantic", "2.14.3", "Ray Train v2 needs it to start"),
    Pin("pydantic-core", "2.50.4", "pydantic requirement"),
    Pin("annotated-types", "0.8.0", "pydantic requirement"),
    Pin("typing-inspection", "0.4.5", "pydantic requirement"),
    Pin("tensorboardX", "2.6.5", "ray[train] requirement"),
    Pin("zarr", "3.1.6", "lake"),
    Pin("numcodecs", "0.16.6", "zarr codecs (repacked: debug sections stripped)"),
    Pin("donfig", "0.8.1.post1", "zarr requirement"),
    Pin("google-crc32c", "1.9.0", "lake checksums, zarr requirement"),
    Pin("dask", "2026.8.0", "stream scheduler, orix requirement"),
    Pin("partd", "1.4.2", "dask requirement"),
    Pin("locket", "1.0.0", "partd requirement"),
    Pin("de-ebsd", "0.2.1", "dynamical engine, detector geometry"),
    Pin("diffpy.structure", "3.3.1", "de-ebsd/orix space groups"),
    Pin("pycifrw", "5.0.1", "diffpy.structure requirement (CIF parser)"),
    Pin("prettytable", "3.18.0", "pycifrw requirement"),
    Pin("wcwidth", "0.9.4", "prettytable requirement"),
    Pin("ply", "3.11", "pycifrw requirement"),
    Pin("orix", "0.15.0", "orientations, point groups"),
    Pin("spglib", "2.8.0", "simulate.structure symmetry"),
    Pin("typing-extensions", "4.16.0", "pydantic floor", fallback=True),
)


def normalise(name: str) -> str:
    """PEP 503 name: lower case, runs of ``-_.`` as one ``-``."""
    out = name.lower()
    for ch in "_.":
        out = out.replace(ch, "-")
    return out


def wheel_name(path: Path) -> tuple[str, str]:
    """(normalised distribution name, version) from a wheel's file name."""
    name, version = path.name.split("-")[:2]
    return normalise(name), version


def record_row(name: str, data: bytes) -> list[str]:
    """One RECORD row: path, ``sha256=`` urlsafe-base64 digest without padding, size."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [name, f"sha256={digest}", str(len(data))]


def is_record(name: str) -> bool:
    """Whether ``name`` is the wheel's own RECORD (not one of a vendored package)."""
    top, _, rest = name.partition("/")
    return top.endswith(".dist-info") and rest == "RECORD"


def copy_info(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    """A fresh entry header with the same name, timestamp and Unix permissions."""
    fresh = zipfile.ZipInfo(info.filename, date_time=info.date_time)
    fresh.external_attr = info.external_attr
    fresh.create_system = info.create_system
    return fresh


def repack(
    wheel: Path,
    drop: Callable[[str], bool],
    transform: Callable[[str, bytes], bytes] | None = None,
) -> tuple[int, int]:
    """Rewrite ``wheel`` in place without the entries ``drop`` selects.

    ``transform(name, data)`` may change an entry's bytes. Entry order, timestamps and Unix
    permissions (executables such as Ray's ``gcs_server`` and ``raylet``) are kept; the
    ``*.dist-info/RECORD`` is rebuilt with a fresh hash and size for every file kept.
    Returns (entries dropped, bytes of content dropped or saved).
    """
    out = wheel.with_suffix(".tmp")
    dropped, saved = 0, 0
    with zipfile.ZipFile(wheel) as zin:
        infos = zin.infolist()
        records = [i for i in infos if is_record(i.filename)]
        if len(records) != 1:
            raise SystemExit(f"{wheel.name}: expected one RECORD, found {len(records)}")
        record_name = records[0].filename
        rows: list[list[str]] = []
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zout:
            for info in infos:
                if info.filename == record_name or info.is_dir():
                    continue
                if drop(info.filename):
                    dropped += 1
                    saved += info.file_size
                    continue
                data = zin.read(info)
                if transform is not None:
                    new = transform(info.filename, data)
                    saved += len(data) - len(new)
                    data = new
                zout.writestr(copy_info(info), data, compress_type=zipfile.ZIP_DEFLATED)
                rows.append(record_row(info.filename, data))
            rows.append([record_name, "", ""])
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerows(rows)
            zout.writestr(copy_info(records[0]), text.getvalue(), zipfile.ZIP_DEFLATED)
    out.replace(wheel)
    return dropped, saved


def check_record(wheel: Path) -> None:
    """Fail unless the archive is sound and RECORD lists every file with its right hash."""
    with zipfile.ZipFile(wheel) as z:
        bad = z.testzip()
        if bad is not None:
            raise SystemExit(f"{wheel.name}: corrupt entry {bad}")
        record_name = next(n for n in z.namelist() if is_record(n))
        rows = csv.reader(io.StringIO(z.read(record_name).decode()))
        listed = {row[0]: row[1:] for row in rows if row}
        files = [i.filename for i in z.infolist() if not i.is_dir()]
        if set(files) != set(listed):
            raise SystemExit(f"{wheel.name}: RECORD and archive differ")
        for name in files:
            if name != record_name and record_row(name, z.read(name))[1:] != listed[name]:
                raise SystemExit(f"{wheel.name}: wrong hash or size for {name} in RECORD")


def ray_drop(name: str) -> bool:
    """Entries left out of the ray wheel: the Java jars and the dashboard's source maps."""
    return name.startswith("ray/jars/") or name.endswith(".js.map")


def strip_debug(name: str, data: bytes) -> bytes:
    """``strip --strip-debug`` of a shared object's bytes (other entries unchanged)."""
    if not name.endswith(".so"):
        return data
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "lib.so"
        path.write_bytes(data)
        subprocess.run(["strip", "--strip-debug", str(path)], check=True)
        return path.read_bytes()


def download(pins: list[Pin], dest: Path) -> None:
    """``pip download`` each pin as a cp312 manylinux (or pure-Python) wheel, without deps."""
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
    cmd += ["--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp"]
    for platform in PLATFORMS:
        cmd += ["--platform", platform]
    cmd += ["-d", str(dest)] + [f"{p.name}=={p.version}" for p in pins]
    subprocess.run(cmd, check=True)


def find_ni_master() -> Path:
    """The EMsoft Ni master: ``$EBSDLAKE_NI_MASTER``, this Python's kikuchipy, or the .venv's."""
    env = os.environ.get("EBSDLAKE_NI_MASTER")
    if env:
        return Path(env)
    relative = Path("kikuchipy/data/emsoft_ebsd_master_pattern") / NI_MASTER_NAME
    try:
        import kikuchipy  # type: ignore[import-not-found]

        return Path(kikuchipy.__file__).parents[1] / relative
    except ImportError:
        pass
    found = sorted(glob.glob(str(ROOT / ".venv/lib/python3*/site-packages" / relative)))
    if not found:
        raise SystemExit(f"no {NI_MASTER_NAME}: set EBSDLAKE_NI_MASTER or install kikuchipy")
    return Path(found[-1])


def venv_versions(names: list[str]) -> dict[str, str]:
    """Installed versions in the project's .venv (empty if there is none)."""
    python = ROOT / ".venv/bin/python"
    if not python.exists():
        return {}
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [str(python), "-c", code, *names], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout)


def travelling_bytes() -> int:
    """Bytes of what every device call sends besides carried paths (tracked + untracked files)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    total = 0
    for name in filter(None, listed):
        path = ROOT / os.fsdecode(name)
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


def dry_run_install(wheels: list[Path]) -> None:
    """Ask pip (no index, no deps) whether it would install these wheels for CPython 3.12."""
    with tempfile.TemporaryDirectory() as target:
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--no-index"]
        cmd += ["--no-deps", "--target", target, "--python-version", "3.12"]
        cmd += ["--implementation", "cp", "--only-binary=:all:"]
        for platform in PLATFORMS:
            cmd += ["--platform", platform]
        subprocess.run(cmd + [str(w) for w in wheels], check=True)


def main(argv: list[str] | None = None) -> int:
    """Build ``.whl/`` from scratch, check it, print the manifest and enforce the size limit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=KIT_DIR, help="kit folder (default .whl)")
    parser.add_argument(
        "--no-check-venv",
        action="store_true",
        help="do not compare the pins with the versions installed in .venv",
    )
    args = parser.parse_args(argv)

    if not args.no_check_venv:
        installed = venv_versions([p.name for p in KIT])
        for pin in KIT:
            have = installed.get(pin.name)
            if have is not None and have != pin.version:
                print(f"warning: .venv has {pin.name} {have}, the kit pins {pin.version}")

    with tempfile.TemporaryDirectory() as scratch:
        stage = Path(scratch) / "kit"
        (stage / "fallback").mkdir(parents=True)
        (stage / "data").mkdir()
        download([p for p in KIT if not p.fallback], stage)
        download([p for p in KIT if p.fallback], stage / "fallback")

        ray = next(stage.glob("ray-*.whl"))
        dropped, saved = repack(ray, ray_drop)
        print(f"ray: dropped {dropped} entries ({saved / 2**20:.1f} MiB uncompressed)")
        if shutil.which("strip"):
            numcodecs = next(stage.glob("numcodecs-*.whl"))
            _, saved = repack(numcodecs, lambda _name: False, strip_debug)
            print(f"numcodecs: debug sections stripped ({saved / 2**20:.1f} MiB uncompressed)")
        else:
            print("warning: no 'strip' on PATH; numcodecs keeps its debug sections (+7.7 MiB)")
        ni = find_ni_master()
        shutil.copy2(ni, stage / "data" / NI_MASTER_NAME)

        wheels = sorted(stage.glob("*.whl"))
        fallbacks = sorted((stage / "fallback").glob("*.whl"))
        names = [wheel_name(w)[0] for w in wheels + fallbacks]
        if len(names) != len(set(names)) or len(names) != len(KIT):
            raise SystemExit(f"expected one wheel per pin, got {sorted(names)}")
        for wheel in wheels + fallbacks:
            check_record(wheel)
        dry_run_install(wheels + fallbacks)

        if args.out.exists():
            shutil.rmtree(args.out)
        shutil.copytree(stage, args.out)

    files = sorted(p for p in args.out.rglob("*") if p.is_file())
    print(f"\n{'name':28} {'version':14} {'MiB':>7}  file")
    for path in files:
        if path.suffix == ".whl":
            name, version = wheel_name(path)
        else:
            name, version = "(data file)", "-"
        rel = path.relative_to(args.out)
        print(f"{name:28} {version:14} {path.stat().st_size / 2**20:7.2f}  {rel}")
    kit_mib = sum(p.stat().st_size for p in files) / 2**20
    repo_mib = travelling_bytes() / 2**20
    total = kit_mib + repo_mib
    print(f"\nkit {kit_mib:.2f} MiB + repo (tracked + untracked, not ignored) {repo_mib:.2f} MiB")
    print(f"= {total:.2f} MiB per device call (limit here {LIMIT_MIB:.0f}, the tool's 64)")
    if total > LIMIT_MIB:
        print(f"error: over {LIMIT_MIB:.0f} MiB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
