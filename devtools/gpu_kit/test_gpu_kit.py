"""The GPU session kit: its dry run on CPU (every stage of the one device call, tiny sizes), the
wheel repacking of build_kit.py and the Ni master file lookup."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from simulate.errors import EmsoftFileError
from simulate.validation import NI_MASTER_ENV, NI_MASTER_NAME, emsoft_ni_master_file

KIT = Path(__file__).resolve().parent
ROOT = KIT.parents[1]  # the repository
STAGES = ("smoke", "projection", "ni", "training", "engine")


@pytest.fixture(scope="module")
def gpu_kit():
    """build_kit.py as a module (devtools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gpu_kit", KIT / "build_kit.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_kit"] = module
    spec.loader.exec_module(module)
    return module


def _wheel(path: Path, gpu_kit) -> Path:
    """A small wheel: an executable, a file to drop, a vendored dist-info, a valid RECORD."""
    files = {
        "pkg/__init__.py": b"x = 1\n",
        "pkg/bin/server": b"\x7fELF fake",
        "pkg/jars/big.jar": b"j" * 1000,
        "pkg/static/main.js.map": b"{}",
        "pkg/vendor/dep-1.0.dist-info/RECORD": b"dep/__init__.py,,\n",
        "pkg-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n",
    }
    rows = [",".join(gpu_kit.record_row(name, data)) for name, data in files.items()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 2, 3, 4, 6))
            mode = 0o755 if name.endswith("server") else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            z.writestr(info, data)
        z.writestr("pkg-1.0.dist-info/RECORD", "\n".join(rows + ["pkg-1.0.dist-info/RECORD,,"]))
    return path


def _drop(name: str) -> bool:
    """The ray rule, on the small wheel's paths."""
    return name.startswith("pkg/jars/") or name.endswith(".js.map")


def test_repack_drops_entries_rewrites_record_and_keeps_permissions(tmp_path, gpu_kit):
    wheel = _wheel(tmp_path / "pkg-1.0-py3-none-any.whl", gpu_kit)
    gpu_kit.check_record(wheel)
    dropped, saved = gpu_kit.repack(
        wheel,
        _drop,
        lambda name, data: data.upper() if name.endswith("__init__.py") else data,
    )
    assert dropped == 2 and saved == 1002
    gpu_kit.check_record(wheel)  # every kept file listed with its new hash and size
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        assert "pkg/jars/big.jar" not in names and "pkg/static/main.js.map" not in names
        assert z.read("pkg/__init__.py") == b"X = 1\n"
        assert z.getinfo("pkg/bin/server").external_attr >> 16 & 0o777 == 0o755
        assert z.getinfo("pkg/__init__.py").date_time == (2024, 1, 2, 3, 4, 6)


def test_check_record_rejects_a_stale_hash(tmp_path, gpu_kit):
    wheel = _wheel(tmp_path / "pkg-1.0-py3-none-any.whl", gpu_kit)
    with zipfile.ZipFile(wheel, "a") as z:
        z.writestr("pkg/extra.py", b"unlisted")
    with pytest.raises(SystemExit, match="RECORD and archive differ"):
        gpu_kit.check_record(wheel)


def test_ni_master_file_prefers_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(NI_MASTER_ENV, str(tmp_path / "ni.h5"))
    assert emsoft_ni_master_file() == tmp_path / "ni.h5"
    monkeypatch.delenv(NI_MASTER_ENV)
    monkeypatch.setitem(sys.modules, "kikuchipy", None)  # as where kikuchipy is not installed
    with pytest.raises(EmsoftFileError, match=NI_MASTER_ENV):
        emsoft_ni_master_file()


def test_ni_master_file_defaults_to_kikuchipys_copy(monkeypatch):
    monkeypatch.delenv(NI_MASTER_ENV, raising=False)
    path = emsoft_ni_master_file()
    assert path.name == NI_MASTER_NAME and path.is_file()


@pytest.mark.slow
def test_dry_run_takes_every_stage_on_cpu(tmp_path):
    """The one device call's script, on CPU with tiny sizes: smoke ends NO-GPU (imports and kit
    checks fine), every bench stage OK with its JSON, all inside the dry run's budget."""
    env = {**os.environ, "OUT": str(tmp_path), "EBSDLAKE_GPU_PYTHON": sys.executable}
    env.pop("_GPU_SESSION_LOGGING", None)
    started = time.monotonic()
    done = subprocess.run(
        ["bash", str(KIT / "session.sh"), "--dry-run"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=420,
    )  # fmt: skip
    wall_s = time.monotonic() - started
    summary = (tmp_path / "summary.txt").read_text().splitlines()
    status = {line.split()[0]: line.split()[1] for line in summary[1:]}
    assert status == {**dict.fromkeys(STAGES, "OK"), "smoke": "NO-GPU"}, done.stdout[-3000:]
    assert done.returncode == 0 and wall_s < 330
    smoke = json.loads((tmp_path / "smoke.json").read_text())
    assert not smoke["imports"]["failed"] and smoke["cuda"]["ok"] is False
    projection = json.loads((tmp_path / "gpu_projection.json").read_text())
    assert projection["complete"] and all(r["patterns_per_s"] > 0 for r in projection["results"])
    assert json.loads((tmp_path / "ni_validation.json").read_text())["passed"]
    training = json.loads((tmp_path / "gpu_training.json").read_text())
    assert training["ratio"] > 0 and len(training["history"]) == 2
    engine = json.loads((tmp_path / "gpu_engine.json").read_text())
    assert engine["complete"] and engine["materials"][0]["material"] == "Ni"
