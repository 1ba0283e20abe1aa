"""The main job end to end (``ebsdlake demo --quick``): every stage for real, at test size."""

from __future__ import annotations

import pytest

from infra.app.cli import main
from infra.app.demo import DemoSettings, run_demo
from lake import Lake


@pytest.mark.slow
def test_demo_end_to_end_then_reuses_the_lake(tmp_path, monkeypatch, capsys):
    # a relative lake path, as `make demo` uses: Ray workers run in other directories
    monkeypatch.chdir(tmp_path)
    lake_url = str(tmp_path / "lake.zarr")
    report = tmp_path / "report"
    assert main(["--lake", "lake.zarr", "demo", "--quick", "--report", "report"]) == 0
    out = capsys.readouterr().out
    assert "held-out accuracy" in out and "ebsdlake demo" in out

    for name in (
        "README.md",
        "master_pattern.png",
        "patterns.png",
        "training_curve.png",
        "confusion.png",
        "confusion.csv",
    ):
        assert (report / name).stat().st_size > 0, name
    text = (report / "README.md").read_text()
    assert "Held-out accuracy" in text and "![confusion matrix](confusion.png)" in text

    lake = Lake.open(lake_url, mode="r")
    catalog = lake.catalog()
    complete = catalog[catalog["status"] == "complete"]
    assert len(complete) >= 6
    assert lake.verify().ok and not lake.verify().incomplete and not lake.verify().corrupt

    # `lake show --patterns` draws a grid of projected patterns from the same lake
    args = ["--lake", "lake.zarr", "lake", "show", "proto-Ni", "--patterns", "3"]
    assert main([*args, "--with", "proto-W", "proto-Si", "--out", "grid.png"]) == 0
    assert (tmp_path / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # A second run reuses the lake: no simulation is redone.
    again = run_demo(DemoSettings(lake_url=lake_url, report_dir=str(report), quick=True))
    assert again.masters == len(complete)
    assert again.new_masters == 0 and again.reused_masters == len(complete)
    assert 0.0 <= again.accuracy <= 1.0
    assert set(again.classes) >= {225, 229}
