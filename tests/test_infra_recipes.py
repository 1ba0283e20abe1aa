"""The cluster recipes stay in sync with the package: they parse, name real entry points and
pin the Ray version the package pins."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import ray
import yaml

from infra.app.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = ROOT / "infra" / "cluster" / "ray-cluster-aws-gpu.yaml"
KUBERAY = ROOT / "infra" / "cluster" / "kuberay-raycluster.yaml"
DOCKERFILE = ROOT / "infra" / "container" / "Dockerfile"


def _pinned_ray_version() -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [d for d in deps if d.startswith("ray[")]
    match = re.search(r"==\s*([\w.]+)", pin)
    assert match, f"pyproject.toml must pin Ray exactly, found {pin!r}"
    return match.group(1)


def _ebsdlake_commands(text: str) -> list[list[str]]:
    """Every ``ebsdlake ...`` invocation a recipe runs or tells the reader to run.

    Invocations are recognised where a shell would run them: after ``-- `` (``ray job
    submit``), ``RUN``, ``||``, ``&&`` or as a YAML list item.
    """
    pattern = r"(?:-- |RUN |\|\| |&& |^\s*- )ebsdlake((?: +[^\s|&;\"'\]>`]+)*)"
    return [shlex.split(m.group(1)) for m in re.finditer(pattern, text, flags=re.M)]


def test_installed_ray_is_the_pinned_one():
    assert ray.__version__ == _pinned_ray_version()


def test_launcher_yaml_parses_and_has_gpu_workers():
    cfg = yaml.safe_load(LAUNCHER.read_text())
    assert cfg["head_node_type"] in cfg["available_node_types"]
    workers = [n for n in cfg["available_node_types"] if n != cfg["head_node_type"]]
    assert workers, "no worker node type"
    assert any("ray start --head" in c for c in cfg["head_start_ray_commands"])
    assert any("--address=$RAY_HEAD_IP" in c for c in cfg["worker_start_ray_commands"])
    assert f"ray{_pinned_ray_version()}" in cfg["docker"]["image"]


def test_kuberay_manifest_gpu_group_secret_and_version():
    doc = yaml.safe_load(KUBERAY.read_text())
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayCluster"
    assert doc["spec"]["rayVersion"] == _pinned_ray_version()
    (gpu_group,) = doc["spec"]["workerGroupSpecs"]
    container = gpu_group["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    secrets = [e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e]
    assert secrets == ["ebsdlake-s3"]
    for c in [container, doc["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]]:
        assert _pinned_ray_version() in c["image"]
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["EBSDLAKE_RAY_ADDRESS"] == "auto"


def test_dockerfile_pins_ray_and_installs_the_entry_point():
    text = DOCKERFILE.read_text()
    assert f'"ray[train,data]=={_pinned_ray_version()}"' in text
    assert "RUN ebsdlake --help" in text
    stages = re.findall(r"^FROM .* AS ([\w-]+)", text, flags=re.M)
    assert stages == ["runtime", "emsoft-build", "with-emsoft"]
    for folder in ("infra", "ingest", "simulate", "lake", "train"):
        assert f"COPY {folder} {folder}" in text
    assert "EMSOFT_BIN=" in text  # the emsoft engine finds the programs through it


def test_pyproject_entry_point_is_the_cli():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"ebsdlake": "infra.app.cli:main"}


@pytest.mark.parametrize("recipe", [LAUNCHER, KUBERAY, DOCKERFILE], ids=lambda p: p.name)
def test_recipe_commands_parse_with_the_real_cli(recipe):
    parser = build_parser()
    commands = _ebsdlake_commands(recipe.read_text())
    assert commands, f"{recipe.name} names no ebsdlake command"
    for words in commands:
        if "--help" in words or "--version" in words:
            continue
        try:
            parser.parse_args(words)
        except SystemExit as exc:  # argparse exits on unknown commands/options
            pytest.fail(f"{recipe.name}: `ebsdlake {' '.join(words)}` does not parse ({exc})")


def _readme_commands(text: str) -> list[list[str]]:
    """``ebsdlake`` command lines in the README's bash blocks (env assignments and comments off)."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            words = shlex.split(line) if line else []
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                words = words[1:]
            if words[:1] == ["ebsdlake"]:
                commands.append(words[1:])
            elif "--" in words and words[words.index("--") + 1 : words.index("--") + 2] == [
                "ebsdlake"
            ]:
                commands.append(words[words.index("--") + 2 :])
    return commands


def test_readme_commands_parse_with_the_real_cli():
    parser = build_parser()
    commands = _readme_commands((ROOT / "README.md").read_text())
    assert len(commands) >= 15
    for words in commands:
        try:
            parser.parse_args(words)
        except SystemExit as exc:
            pytest.fail(f"README: `ebsdlake {' '.join(words)}` does not parse ({exc})")
