"""The GPU session kit's wheel repacking (scripts/gpu_kit.py) and the Ni master file lookup."""

from __future__ import annotations

import importlib.util
import stat
import sys
import zipfile
from pathlib import Path

import pytest

from simulate.errors import EmsoftFileError
from simulate.validation import NI_MASTER_ENV, NI_MASTER_NAME, emsoft_ni_master_file

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_kit():
    """scripts/gpu_kit.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gpu_kit", ROOT / "scripts" / "gpu_kit.py")
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
