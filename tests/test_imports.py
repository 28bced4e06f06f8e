"""The project's import graph: no module imports another that imports it back, directly or around a loop."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGES = {"recognizer": ROOT / "function" / "recognizer", "training": ROOT / "training", "bench": ROOT / "bench"}
PACKAGES["infra"] = ROOT / "infra"


def modules() -> dict[str, Path]:
    return {f"{package}.{path.stem}": path for package, folder in PACKAGES.items() for path in folder.glob("*.py")}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports anywhere in its file (function-level imports count too)."""
    package = name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package if node.level else (node.module or "")
            if node.level and node.module:
                base = f"{package}.{node.module}"
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {module for module in found if module in known and module != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A loop of imports in `graph` (a depth-first search that meets a module still on its path), or None."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        for other in sorted(graph[name]):
            if other in path:
                return [*path[path.index(other) :], other]
            if other not in done:
                found = visit(other, [*path, other])
                if found:
                    return found
        done.add(name)
        return None

    for name in sorted(graph):
        found = None if name in done else visit(name, [name])
        if found:
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"b"}}) is None


def test_no_import_cycles():
    table = modules()
    graph = {name: imports(name, path, set(table)) for name, path in table.items()}
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_the_function_never_imports_tensorflow_or_training():
    for path in PACKAGES["recognizer"].glob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {n for n in names if n.split(".")[0] in ("tensorflow", "keras", "training")}, path
