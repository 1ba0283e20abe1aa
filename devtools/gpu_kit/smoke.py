"""Smoke checks for a GPU session: versions, every project module imported, the kit's
requirements met, and CUDA working. Run by ``devtools/gpu_kit/session.sh`` (stage ``smoke``)::

    python3 devtools/gpu_kit/smoke.py --kit .whl --out "$OUT/smoke.json"

Exit status: 0 all good; 1 a module failed to import or a kit requirement is unmet; 2 only
the CUDA check failed (no GPU, as when run on a CPU machine). Modules that need a package the
kit leaves out on purpose (``ingest`` needs pymatgen, for instance) are listed as skipped.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata as metadata
import json
import pkgutil
import platform
import sys
import time
import tomllib
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]  # the repository
PACKAGES = ("lake", "simulate", "train", "ingest", "infra")
#: Top-level modules the kit leaves out on purpose (none is imported by the GPU jobs).
NOT_IN_KIT = frozenset(
    {"pymatgen", "pyxtal", "mp_api", "emmet", "kikuchipy", "hyperspy", "moto", "boto3", "s3fs"}
)
#: Requirements of kit wheels that the GPU jobs never import, so the kit omits them.
UNUSED_REQUIREMENTS = frozenset({"diffsims", "anyplotlib", "anywidget", "pooch"})
#: Device packages the project relies on, whose versions the log should show.
DEVICE_PACKAGES = (
    "torch", "torchvision", "numpy", "numba", "scipy", "pandas", "pyarrow", "xarray", "fsspec",
    "h5py", "matplotlib", "rich", "tqdm", "typing-extensions", "packaging", "protobuf",
    "msgpack", "click", "filelock", "pyyaml", "requests", "attrs", "cloudpickle", "toolz",
    "lazy-loader", "pytest",
)  # fmt: skip


def version_of(name: str) -> str | None:
    """Installed version of a distribution, or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def import_every_module() -> dict[str, Any]:
    """Import every module of the project's packages; sort them into ok / skipped / failed."""
    ok: list[str] = []
    skipped: dict[str, str] = {}
    failed: dict[str, str] = {}

    def record(name: str, exc: BaseException) -> None:
        missing = getattr(exc, "name", None) or ""
        if isinstance(exc, ModuleNotFoundError) and missing.split(".")[0] in NOT_IN_KIT:
            skipped[name] = f"needs {missing} (not in the kit)"
        else:
            failed[name] = "".join(traceback.format_exception_only(exc)).strip()[:500]

    for package in PACKAGES:
        try:
            module = importlib.import_module(package)
        except Exception as exc:  # every failure is reported
            record(package, exc)
            continue
        ok.append(package)
        names = [info.name for info in pkgutil.walk_packages(module.__path__, package + ".")]
        for name in names:
            try:
                importlib.import_module(name)
            except Exception as exc:
                record(name, exc)
            else:
                ok.append(name)
    return {"ok": len(ok), "skipped": skipped, "failed": failed}


def requirement_problems(requirements: list[str], owner: str) -> list[str]:
    """Unmet requirements (markers evaluated, extras ignored) among ``requirements``."""
    from packaging.requirements import Requirement

    problems = []
    for text in requirements:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        if req.name.lower() in UNUSED_REQUIREMENTS:
            continue
        have = version_of(req.name)
        if have is None:
            problems.append(f"{owner} needs {req}: not installed")
        elif req.specifier and not req.specifier.contains(have, prereleases=True):
            problems.append(f"{owner} needs {req}: have {have}")
    return problems


def kit_requirements(kit: Path) -> dict[str, Any]:
    """Each kit wheel's distribution as installed, and its unmet requirements."""
    installed, problems = {}, []
    for wheel in sorted(kit.glob("*.whl")) + sorted(kit.glob("fallback/*.whl")):
        name, version = wheel.name.split("-")[:2]
        have = version_of(name)
        installed[name] = have
        if have is None:
            problems.append(f"{name} {version}: not installed")
            continue
        if wheel.parent == kit and have != version:
            problems.append(f"{name}: kit has {version}, {have} is the one imported")
        problems += requirement_problems(metadata.requires(name) or [], name)
    return {"installed": installed, "problems": problems}


def project_requirements() -> list[str]:
    """ebsdlake's own pyproject requirements that this environment does not meet (warnings)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return requirement_problems(project["dependencies"], "ebsdlake")


def cuda_check() -> dict[str, Any]:
    """Torch's view of the GPU and one timed bf16 matrix product; ``ok`` False without one."""
    import torch

    info: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.version.cuda}
    if not torch.cuda.is_available():
        return {**info, "ok": False, "error": "no GPU: torch.cuda.is_available() is False"}
    props = torch.cuda.get_device_properties(0)
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    a @ a
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(10):
        a @ a
    torch.cuda.synchronize()
    tflops = 10 * 2 * 8192**3 / (time.perf_counter() - started) / 1e12
    return {
        **info,
        "ok": True,
        "name": props.name,
        "capability": f"{props.major}.{props.minor}",
        "memory_gib": round(props.total_memory / 2**30, 1),
        "multiprocessors": props.multi_processor_count,
        "bf16_matmul_tflops": round(tflops, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the checks, print a short report and write it as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kit", type=Path, default=ROOT / ".whl", help="the kit folder")
    parser.add_argument("--out", type=Path, default=Path("smoke.json"), help="JSON report")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "host": platform.node(),
        "device_packages": {name: version_of(name) for name in DEVICE_PACKAGES},
    }
    print("python", report["python"], sys.executable)
    print("versions:", " ".join(f"{k}={v}" for k, v in report["device_packages"].items()))
    report["imports"] = import_every_module()
    imports = report["imports"]
    print(f"imports: {imports['ok']} ok, {len(imports['skipped'])} skipped (not in the kit)")
    for name, why in imports["skipped"].items():
        print(f"  skipped {name}: {why}")
    for name, error in imports["failed"].items():
        print(f"  FAILED {name}: {error}")
    report["kit"] = kit_requirements(args.kit) if args.kit.is_dir() else None
    for problem in report["kit"]["problems"] if report["kit"] else ["no kit folder"]:
        print("  kit:", problem)
    report["project_requirements"] = project_requirements()
    for problem in report["project_requirements"]:
        print("  warning (pyproject pin):", problem)
    report["cuda"] = cuda_check()
    print("cuda:", json.dumps(report["cuda"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    if imports["failed"] or (report["kit"] and report["kit"]["problems"]):
        return 1
    return 0 if report["cuda"]["ok"] else 2


if __name__ == "__main__":
    sys.exit(main())
