"""``ebsdlake runs ls|rm`` and unknown run ids, through the real CLI on a real local lake.

Run folders are written as training leaves them at three moments: finished (``model.pt`` and
the protocol's ``protocol.json``), interrupted (a Ray Train ``checkpoint_*`` folder, no model)
and killed before its first checkpoint (only the settings files).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_checks import one_line_error

from infra.app.cli import main
from lake import Lake
from train.runs.run import CONFIG_FILE, MODEL_FILE, PROTOCOL_FILE, Run


def _config(label: str) -> dict:
    return {"kind": "supervised", "config": {"label": label}, "train_ids": [], "test_ids": []}


@pytest.fixture
def runs_lake(tmp_path) -> str:
    """A local lake with a finished, an interrupted and a never-trained run."""
    url = str(tmp_path / "lake.zarr")
    assert main(["--lake", url, "ingest", "prototypes", "--only", "Fe"]) == 0
    lake = Lake.open(url)
    finished = Run(lake, "sg-final")
    finished.put_json(CONFIG_FILE, _config("spacegroup"))
    finished.put_json(PROTOCOL_FILE, {"test_accuracy": 0.8125})
    finished.put_bytes(MODEL_FILE, b"weights")
    interrupted = Run(lake, "sg-resumable")
    interrupted.put_json(CONFIG_FILE, _config("disordered_spacegroup"))
    checkpoint = Path(url) / "runs" / "sg-resumable" / "checkpoint_000000"
    checkpoint.mkdir()
    (checkpoint / "checkpoint.pt").write_bytes(b"state")
    Run(lake, "sg-killed").put_json(CONFIG_FILE, _config("spacegroup"))
    return url


def _rows(out: str) -> dict[str, str]:
    """``runs ls`` output: run id -> its table row."""
    return {line.split()[1]: line for line in out.splitlines() if "sg-" in line}


def test_runs_ls_shows_kind_label_state_accuracy_and_created(runs_lake, capsys):
    assert main(["--lake", runs_lake, "runs", "ls"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert set(rows) == {"sg-final", "sg-resumable", "sg-killed"}
    assert "supervised" in rows["sg-final"] and "finished" in rows["sg-final"]
    assert "0.8125" in rows["sg-final"]
    assert "interrupted" in rows["sg-resumable"] and "disordered_spacegroup" in rows["sg-resumable"]
    assert "never trained" in rows["sg-killed"]
    assert all(" 20" in row for row in rows.values())  # a creation date (20yy-mm-dd hh:mm)


def test_runs_rm_removes_a_run_that_never_trained(runs_lake, capsys):
    assert main(["runs", "rm", "sg-killed", "--lake", runs_lake]) == 0
    assert "removed run sg-killed (never trained)" in capsys.readouterr().out
    assert Lake.open(runs_lake, mode="r").run_ids() == ["sg-final", "sg-resumable"]
    assert main(["--lake", runs_lake, "runs", "ls"]) == 0
    assert set(_rows(capsys.readouterr().out)) == {"sg-final", "sg-resumable"}


def test_runs_rm_of_an_unknown_run_removes_nothing_and_names_the_runs(runs_lake, capsys):
    line = one_line_error(capsys, ["--lake", runs_lake, "runs", "rm", "sg-killed", "sg-fnal"])
    assert "run 'sg-fnal' does not exist" in line and "did you mean sg-final" in line
    assert "sg-killed" in Lake.open(runs_lake, mode="r").run_ids()


def test_evaluate_an_unknown_run_names_the_runs_that_exist(runs_lake, capsys):
    line = one_line_error(capsys, ["--lake", runs_lake, "evaluate", "nosuchrun"])
    assert "run 'nosuchrun' does not exist" in line
    assert "runs: sg-final, sg-killed, sg-resumable" in line


def test_runs_ls_on_a_lake_without_runs(tmp_path, capsys):
    url = str(tmp_path / "lake.zarr")
    assert main(["--lake", url, "ingest", "prototypes", "--only", "Fe"]) == 0
    assert main(["--lake", url, "runs", "ls"]) == 0
    assert "0 runs" in capsys.readouterr().out
    line = one_line_error(capsys, ["--lake", url, "evaluate", "nosuchrun"])
    assert "the lake has no runs yet" in line
