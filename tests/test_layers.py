"""The kernel is one-way layers: no module of arbframe/ imports one that imports it back,
type-checking imports included, and components see the kernel only through contracts."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "arbframe"


def imports() -> dict[str, set[str]]:
    """Module -> the arbframe modules it imports anywhere (TYPE_CHECKING and functions too)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module == "arbframe":
                names = [f"arbframe.{alias.name}" for alias in node.names]  # from arbframe import x
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            found |= {n.split(".")[1] for n in names if n.startswith("arbframe.")}
        graph[path.stem] = found - {path.stem}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str]:
    """A cycle as a path of module names, or []."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> list[str]:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target, [*path, target])):
                return found
        state[module] = 2
        return []

    for module in sorted(graph):
        if module not in state and (found := visit(module, [module])):
            return found
    return []


def test_no_import_cycle():
    found = cycle(imports())
    assert found == [], " -> ".join(found)


def test_the_cycle_finder_finds_one():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_layers():
    graph = imports()
    assert graph["orders"] == set()
    assert graph["model"] == {"orders"}
    # the plugin contract knows the data and the clock, not the kernel behind it
    assert graph["components"] <= {"model", "orders", "clock", "errors"}
    # only the entry points see the whole run
    # (and tuning, whose trials are whole scenario runs)
    assert {m for m, deps in graph.items() if "runner" in deps} == {"cli", "testing", "tuning"}
    assert {m for m, deps in graph.items() if "cli" in deps} == {"__main__"}
