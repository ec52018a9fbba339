"""Imports inside qa_service/ only go downwards: no module reaches, directly or through others,
back to itself.

Every import statement counts, wherever it sits: at module level, under ``if TYPE_CHECKING:``
and inside functions. A lazy import inside a function does not fail at import time, but it still
ties the lower module to the higher one (the embedding layer once reached up to the service, via
a lazy import and a type-only one, just to read calibration text), so it is held to the same
rule. What is not counted: the implicit import of a module's parent package (``import a.b.c``
runs ``a/b/__init__.py``), since a package's ``__init__`` re-exporting its own submodules would
otherwise look like a circle with every one of them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import qa_service

ROOT = Path(qa_service.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imported(path: Path, name: str, modules: set[str]) -> set[str]:
    """The qa_service modules that ``path`` imports anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            # ``from qa_service import samples`` imports the submodule qa_service.samples
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {target for target in found if target in modules and target != name}


def import_graph() -> dict[str, set[str]]:
    paths = {_module_name(path): path for path in ROOT.rglob("*.py")}
    modules = set(paths)
    return {name: _imported(path, name, modules) for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle as a path [a, b, ..., a], or None; depth-first, without recursion."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path = [start]
        stack = [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            step = next(stack[-1], None)
            if step is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(step) == 1:
                return [*path[path.index(step):], step]
            elif not state.get(step):
                state[step] = 1
                path.append(step)
                stack.append(iter(sorted(graph[step])))
    return None


def test_the_graph_sees_the_package() -> None:
    graph = import_graph()
    assert "qa_service.service" in graph and "qa_service.embedding.openvino" in graph
    assert "qa_service.samples" in graph["qa_service.service"]


def test_no_import_cycle_inside_qa_service() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_sample_is_a_pure_data_module() -> None:
    assert import_graph()["qa_service.samples"] <= {"qa_service.ingest.loaders", "qa_service.models"}


def test_find_cycle_reports_a_circle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
