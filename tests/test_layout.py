"""The code's shape: which package may import which, and no import circles.

`data_tools` knows nothing of `cond_lsgan`; `cond_lsgan` reaches `data_tools` only through
`cond_lsgan/shared.py`, so the dependency stays one way and visible. Imports inside
functions count too: a lazy import still ties two modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import REPO_ROOT

PACKAGES = ("cond_lsgan", "data_tools")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[0] == "configs":  # shipped inside the package as cond_lsgan.configs
        parts = ["cond_lsgan", *parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports() -> dict[str, set[str]]:
    """Every project module -> the project modules it imports (anywhere in the file)."""
    paths = [p for package in (*PACKAGES, "configs") for p in (REPO_ROOT / package).rglob("*.py")]
    modules = {module_name(p): p for p in paths}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets.add(base)
                targets.update(f"{base}.{alias.name}" for alias in node.names)  # `from . import distributed`
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_data_tools_never_imports_cond_lsgan():
    graph = project_imports()
    assert {(a, b) for a, targets in graph.items() if a.startswith("data_tools") for b in targets
            if b.startswith("cond_lsgan")} == set()


def test_cond_lsgan_reaches_data_tools_only_through_shared():
    graph = project_imports()
    crossing = {(a, b) for a, targets in graph.items() if a.startswith("cond_lsgan") for b in targets
                if b.startswith("data_tools")}
    assert crossing and {a for a, _ in crossing} == {"cond_lsgan.shared"}


def test_no_import_circles():
    graph = project_imports()
    # A package imports its own submodules (its __init__ is their parent); that is not a circle.
    edges = {a: {b for b in targets if not a.startswith(b + ".")} for a, targets in graph.items()}
    state: dict[str, str] = {}
    circles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(edges[node]):
            if state.get(target) == "open":
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[node] = "done"

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert circles == []


def test_errors_module_imports_nothing_of_the_project():
    assert project_imports()["data_tools.errors"] == set()
