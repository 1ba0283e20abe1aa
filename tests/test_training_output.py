"""What `ebsdlake train` shows and how it stops (issue #15, "Commands that hang or shout").

A cluster without the GPUs or CPUs the workers need is refused in one line instead of waiting
forever; a real `ebsdlake train` shows ebsdlake's own epoch lines and a closing table, not Ray's
logs or a JSON dump; Ctrl-C exits 130 with one line, leaves no Ray process and a run that the same
command resumes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from training_fixtures import HELD_OUT, training_lake, training_masters  # noqa: F401

from infra.app.cli import main

EBSDLAKE = str(Path(sys.executable).parent / "ebsdlake")
TINY = ["--folds", "1", "--model", "resnet10", "--image-size", "32", "--batch-size", "8"]
TINY += ["--workers", "1", "--test-ids", *HELD_OUT]
RAY_CHATTER = ("Requesting resources", "Setting up process group", "TrainingReport", "core_worker")


@pytest.fixture
def ray_without_gpus():
    """A local Ray runtime with 2 CPUs and no GPU (whatever the machine has)."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.timeout(180)
def test_a_cluster_without_the_workers_resources_is_refused_in_one_line(
    training_lake,  # noqa: F811
    ray_without_gpus,
    capsys,
):
    from lake import Lake
    from train.errors import TrainingError
    from train.runs.training import train_supervised
    from train.supervised import SupervisedConfig

    lake = ["--lake", training_lake.url]
    code = main([*lake, "train", "--gpu", *TINY, "--epochs", "1", "--run-id", "no-gpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == (
        "ebsdlake train: run 'no-gpu': the local Ray runtime has 0 GPUs; 1 worker needs 1 GPU "
        "each; train without --gpu (use_gpu = false), or join a cluster with GPUs ([ray] address)"
    )
    code = main([*lake, "train", *TINY, "--workers", "3", "--epochs", "1", "--run-id", "no-cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "the local Ray runtime has 2 CPUs; 3 workers need 1 CPU each; use --workers 2" in err
    config = SupervisedConfig(arch="resnet10", image_size=32, epochs=1, use_gpu=True)
    with pytest.raises(TrainingError, match="has 0 GPUs; 1 worker needs 1 GPU each"):
        train_supervised(training_lake.url, {}, training_lake.train_ids, config, "api-no-gpu")
    assert not {"no-gpu", "no-cpu", "api-no-gpu"} & set(Lake.open(training_lake.url).run_ids())


def _descendants(pid: int) -> set[int]:
    """Process ids below ``pid`` (empty once it is gone)."""
    try:
        return {child.pid for child in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_train_shows_its_own_progress_and_ctrl_c_leaves_a_resumable_run(
    training_lake,  # noqa: F811
    tmp_path,
):
    from train.runs.run import Run, open_lake

    run_id = "ctrl-c"
    # 24 epochs: long enough to be interrupted after the first checkpoint, short to resume
    command = [EBSDLAKE, "--lake", training_lake.url, "train", *TINY, "--epochs", "24"]
    command += ["--steps-per-epoch", "4", "--run-id", run_id]
    run_folder = Path(training_lake.url) / "runs" / run_id
    stdout, stderr = tmp_path / "out.txt", tmp_path / "err.txt"
    with stdout.open("w") as out, stderr.open("w") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd=tmp_path)
        ray_processes: set[int] = set()
        deadline = time.monotonic() + 300
        while not (run_folder / "checkpoint_manager_snapshot.json").exists():
            assert process.poll() is None, stderr.read_text()
            assert time.monotonic() < deadline, "no checkpoint after 300 s"
            ray_processes |= _descendants(process.pid)
            time.sleep(0.2)
        ray_processes |= _descendants(process.pid)
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=120)
    lines = stderr.read_text().splitlines()
    assert code == 130, lines
    assert lines[-1] == (
        f"ebsdlake train: interrupted; run '{run_id}' keeps its checkpoints: the same command "
        "resumes it"
    )
    assert not any(text in line for line in lines for text in RAY_CHATTER), lines
    time.sleep(5)  # the local Ray's processes end with its shutdown
    assert ray_processes and not [pid for pid in ray_processes if psutil.pid_exists(pid)]
    assert Run(open_lake(training_lake.url, {}), run_id).status == "unfinished"

    again = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr
    lines = again.stderr.splitlines()
    assert lines[0].startswith(f"{run_id}: resuming after epoch "), lines
    assert lines[-1].startswith(f"{run_id} epoch 24/24: 4 steps, loss "), lines
    assert all(" img/s, " in line and ", left " in line for line in lines[1:]), lines
    assert not any(text in again.stderr for text in RAY_CHATTER)
    assert "held-out accuracy" in again.stdout and "{" not in again.stdout
    assert Run(open_lake(training_lake.url, {}), run_id).status == "finished"
