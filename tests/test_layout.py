"""The code's shape: which package may import which, and no import circles.

`data_tools` knows nothing of `cond_lsgan`; `cond_lsgan` reaches `data_tools` only through
`cond_lsgan/data_tools_api.py`, so the dependency stays one way and visible. Training
imports neither sampling nor evaluation (a new loss or data source is added without them).
Imports inside functions count too: a lazy import still ties two modules together, so one
that dodges a circle shows up as the circle, between modules or between packages.
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


def test_cond_lsgan_reaches_data_tools_only_through_its_api_module():
    graph = project_imports()
    crossing = {(a, b) for a, targets in graph.items() if a.startswith("cond_lsgan") for b in targets
                if b.startswith("data_tools")}
    assert crossing and {a for a, _ in crossing} == {"cond_lsgan.data_tools_api"}


def test_training_imports_neither_sampling_nor_evaluation():
    graph = project_imports()
    wrong = {(a, b) for a, targets in graph.items() if a.startswith("cond_lsgan.training") for b in targets
             if b.startswith(("cond_lsgan.sampling", "cond_lsgan.evaluation", "cond_lsgan.report"))}
    assert wrong == set()
    # and not by way of a top-level module either: nothing training reaches imports them
    reached, todo = set(), [a for a in graph if a.startswith("cond_lsgan.training")]
    while todo:
        for target in graph[todo.pop()] - reached:
            reached.add(target)
            todo.append(target)
    assert {m for m in reached if m.startswith(("cond_lsgan.sampling", "cond_lsgan.evaluation", "cond_lsgan.report"))} == set()


def circles_of(edges: dict[str, set[str]]) -> list[list[str]]:
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
    return circles


def test_no_import_circles():
    graph = project_imports()
    # A package imports its own submodules (its __init__ is their parent); that is not a circle.
    assert circles_of({a: {b for b in targets if not a.startswith(b + ".")} for a, targets in graph.items()}) == []


def package_of(module: str) -> str:
    """cond_lsgan.training.step -> cond_lsgan.training; a top-level module is its own node."""
    parts = module.split(".")
    return ".".join(parts[:2])


def test_no_circles_between_packages():
    """Modules of cond_lsgan.training, .sampling, .evaluation ... taken together: the circle a lazy import once hid
    (generate -> evaluation.judge, evaluation.scoring -> generate) was between packages, not modules."""
    graph = project_imports()
    edges: dict[str, set[str]] = {}
    for a, targets in graph.items():
        edges.setdefault(package_of(a), set()).update(package_of(b) for b in targets if package_of(b) != package_of(a))
    for targets in list(edges.values()):
        for b in targets:
            edges.setdefault(b, set())
    assert circles_of(edges) == []


def test_a_lazy_import_that_dodges_a_circle_is_caught():
    """The check itself, on the shape of the old code: a function-level import closing a circle between packages."""
    edges = {"cond_lsgan.sampling": {"cond_lsgan.evaluation"}, "cond_lsgan.evaluation": {"cond_lsgan.sampling"}}
    assert circles_of(edges) == [["cond_lsgan.evaluation", "cond_lsgan.sampling", "cond_lsgan.evaluation"]]


def test_errors_module_imports_nothing_of_the_project():
    assert project_imports()["data_tools.errors"] == set()
