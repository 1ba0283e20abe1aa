"""Ray workers import our packages from the driver's working directory first: a lake folder
called ``lake`` (or a script ``train.py``) there must neither break a campaign nor pass
unnoticed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.ray_runtime import RayStartError, check_worker_imports, shadowed_packages

CHECKOUT = str(Path(__file__).resolve().parents[1])
EBSDLAKE = str(Path(sys.executable).parent / "ebsdlake")
TINY_SIMULATION = ["--npx", "6", "--dmin", "0.2", "--energies", "20:20:1", "--mc-electrons",
                   "2000", "--bethe", "4", "8", "50", "--precision", "single", "--quiet"]  # fmt: skip


def test_a_module_named_like_a_package_is_reported(tmp_path):
    (tmp_path / "train.py").write_text("print('a user script')\n")
    assert shadowed_packages(tmp_path) == ["train"]
    with pytest.raises(RayStartError, match=r"named 'train' here would replace"):
        check_worker_imports(tmp_path)


def test_a_data_folder_named_lake_is_reported_under_a_hook_based_install(tmp_path, monkeypatch):
    """Without the checkout on sys.path (an editable install through an import hook, which
    Ray workers consult only after their path), a plain ``lake/`` folder wins in workers."""
    (tmp_path / "lake").mkdir()
    (tmp_path / "lake" / "zarr.json").write_text("{}")
    assert shadowed_packages(tmp_path) == []  # the checkout on sys.path: a regular package wins
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", CHECKOUT)])
    assert shadowed_packages(tmp_path) == ["lake"]


@pytest.mark.slow
def test_a_campaign_runs_from_a_folder_holding_a_lake_called_lake(tmp_path):
    """The user story behind the check: ``ebsdlake --lake lake ...`` in a fresh folder, through
    real Ray workers started from that folder."""

    def ebsdlake(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [EBSDLAKE, "--lake", "lake", *args],
            cwd=tmp_path,
            env={**os.environ, "COLUMNS": "200"},  # room for whole ids in the table
            capture_output=True,
            text=True,
        )

    assert ebsdlake("ingest", "prototypes", "--only", "Ni").returncode == 0
    run = ebsdlake("simulate", "--num-actors", "1", *TINY_SIMULATION)
    assert run.returncode == 0, run.stderr[-2000:]
    listing = ebsdlake("lake", "ls")
    assert "proto-Ni" in listing.stdout and "complete" in listing.stdout, listing.stdout
