"""The layout's rules, checked on the source: layers point one way, modules stay small.

Imports are read with ``ast`` (function-local ones included, as they are edges too): no cycle
between modules or between folders (sub-packages), ``train/patterns`` imports ``lake`` only,
no stage imports the application (``infra/app``), ``lake`` never imports torch or ray, and no
module passes :data:`MAX_LINES`.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("infra", "ingest", "simulate", "lake", "train")
MAX_LINES = 450
"""Longest module, in lines (the layout issue's rule)."""


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the packages."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imported_names(path: Path) -> list[str]:
    """Every absolute import in a file, as ``module`` or ``module.name`` (local ones too)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _resolve(name: str) -> str | None:
    """The project module an imported name lives in (None: not ours)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in MODULES.items():
        for name in _imported_names(path):
            target = _resolve(name)
            if target and target != module:
                graph[module].add(target)
    return graph


EDGES = _edges()


def _folder(module: str) -> str:
    """The package folder a module's file sits in (``train.runs`` for ``train.runs.run``)."""
    return ".".join(MODULES[module].relative_to(ROOT).parent.parts)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_modules():
    assert _cycles(EDGES) == []


def test_no_import_cycle_between_folders():
    folders: dict[str, set[str]] = defaultdict(set)
    for module, targets in EDGES.items():
        for target in targets:
            if _folder(module) != _folder(target):
                folders[_folder(module)].add(_folder(target))
    assert _cycles(folders) == []


#: Folder -> the folders its modules may import (the layer diagram of docs/ARCHITECTURE.md).
ALLOWED = {
    "lake": {"lake"},
    "infra": {"infra", "lake"},
    "ingest": {"ingest", "infra", "lake"},
    "simulate": {"simulate", "ingest", "infra", "lake"},
    "train.patterns": {"train.patterns", "lake"},
    "train": {"train", "train.patterns", "infra", "lake"},
    "train.runs": {"train.runs", "train", "train.patterns", "infra", "lake"},
}


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_a_layer_imports_only_the_layers_below_it(folder):
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in EDGES.items()
        if _folder(module) == folder
        for target in targets
        if _folder(target) not in ALLOWED[folder]
    )
    assert not wrong


def test_no_stage_imports_the_application():
    stages = [m for m in EDGES if not m.startswith("infra.app")]
    wrong = [f"{m} -> {t}" for m in stages for t in EDGES[m] if t.startswith("infra.app")]
    assert not wrong


def test_lake_never_imports_torch_or_ray():
    for module, path in MODULES.items():
        if module.startswith("lake"):
            heavy = [n for n in _imported_names(path) if n.split(".")[0] in ("torch", "ray")]
            assert not heavy, f"{module} imports {heavy}"


def test_no_module_is_over_the_line_limit():
    files = [p for p in ROOT.rglob("*.py") if ".venv" not in p.parts and ".emsoft" not in p.parts]
    long = {
        str(p.relative_to(ROOT)): n
        for p in files
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"
