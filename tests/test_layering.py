"""DESIGN.md's layering, enforced: subsystems do not import each other.

Layer 0 (foundation): errors, _clock, _events, _validate, _redis, _secrets, _version.
Layer 1: breaker (the primitive the others compose: the cache guards its Redis
calls with one, the registry keeps one per instance, policies wrap one).
Layer 2: policies, cache, registry, sql, monitor — each may import layer 0,
``breaker``, and third-party packages; never another layer-2 subsystem.
Layer 3: _facade, config, cli, integrations, _demo — may import anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "sentia_core"
FOUNDATION = {
    "errors", "_clock", "_events", "_validate", "_redis", "_secrets", "_version", "testing",
}  # fmt: skip
LAYER2 = {"policies", "cache", "registry", "sql", "monitor"}
ALLOWED = {
    "breaker": FOUNDATION - {"testing"},
    **{name: (FOUNDATION - {"testing"}) | {"breaker"} for name in LAYER2},
}


def _internal_imports(path: Path, subsystem: str) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and node.module.startswith("sentia_core"):
                parts = node.module.split(".")
                if len(parts) > 1:
                    found.add(parts[1])
                else:
                    found.update(a.name for a in node.names)
            elif node.level == 2:  # from ..x import y, inside a subsystem package
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found.update(a.name for a in node.names)
            elif node.level >= 3:
                pytest.fail(f"{path}: relative import beyond the package")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "sentia_core" and len(parts) > 1:
                    found.add(parts[1])
    found.discard(subsystem)
    return found


SUBSYSTEMS = sorted(p.name for p in SRC.iterdir() if p.is_dir() and p.name in ALLOWED)


@pytest.mark.parametrize("subsystem", SUBSYSTEMS)
def test_subsystem_imports_only_what_its_layer_allows(subsystem: str) -> None:
    for path in sorted((SRC / subsystem).rglob("*.py")):
        illegal = _internal_imports(path, subsystem) - ALLOWED[subsystem]
        assert not illegal, f"{path.relative_to(SRC)} imports {sorted(illegal)}"


def _module_graph(package: Path) -> dict[str, set[str]]:
    """Each module of ``package`` (a subsystem) -> the sibling modules it imports.

    Every import counts: top-level, inside functions, and under
    ``TYPE_CHECKING`` (a cycle there is still two modules that need each other).
    """
    names = {p.stem for p in package.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    deps.add(node.module.split(".")[0])
                else:
                    deps.update(a.name for a in node.names)
        graph[path.stem] = (deps & names) - {path.stem, "__init__"}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


PACKAGES = sorted(p for p in SRC.rglob("*") if p.is_dir() and (p / "__init__.py").exists())


@pytest.mark.parametrize("package", PACKAGES, ids=[str(p.relative_to(SRC)) for p in PACKAGES])
def test_no_import_cycle_inside_a_subsystem(package: Path) -> None:
    cycle = _cycle(_module_graph(package))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
