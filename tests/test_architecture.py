"""The import graph follows DESIGN.md's data flow: no circles, no stage importing upward.

This file is where the allowed direction is written down (the README's architecture map
shows the same order). Every ``import`` in ``src/propensity`` counts — at module level and
inside functions — except those under ``if TYPE_CHECKING:``, which never run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "propensity"

#: The stages and edges, in the order data flows (DESIGN.md): a module may import its own layer
#: and the layers before it, never a later one. Names are module prefixes under ``propensity``.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("errors", "config", "metrics")),
    ("sources", ("sources", "synthetic", "datasets", "engines")),
    ("validate", ("schema", "events")),
    ("features", ("features", "analytics")),
    ("model", ("manifest", "kernels", "calibration", "pipeline")),
    ("lifetime value", ("clv",)),
    ("train", ("training",)),
    ("evaluate and explain", ("evaluation", "explain", "report", "targeting", "monitoring")),
    ("bundle and registry", ("bundle", "tracking", "mlflow_model", "loading")),
    ("application", ("workflows",)),
    ("edges", ("cli", "serving", "dashboard", "stream")),
]
EDGES = ("cli", "serving", "dashboard", "stream")
#: The CLI starts the service, the dashboard and the stream scorer; nothing else links two edges.
LAUNCHES = {"cli": ("serving", "dashboard", "stream")}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> Iterator[str]:
    """Every propensity module imported anywhere in ``tree`` (not under TYPE_CHECKING)."""
    package = module if is_package else module.rpartition(".")[0]
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split(".")[0] == "propensity")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                name = node.module or ""
            if name.split(".")[0] == "propensity":
                for alias in node.names:  # `from propensity.x import y` may import the module x.y
                    sub = f"{name}.{alias.name}"
                    yield sub if sub in known else name
        stack.extend(ast.iter_child_nodes(node))


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(files)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[module] = set(_imports(tree, module, path.name == "__init__.py", known)) - {module}
    return graph


def _top(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def _layer(module: str) -> int:
    top = _top(module)
    for i, (_, prefixes) in enumerate(LAYERS):
        if top in prefixes:
            return i
    raise AssertionError(f"{module} is in no layer: add '{top}' to LAYERS in tests/test_architecture.py")


GRAPH = _graph()


def test_every_module_has_a_layer():
    for module in GRAPH:
        if module != "propensity":
            _layer(module)


def test_no_stage_imports_a_later_stage_or_an_edge():
    wrong = []
    for module, targets in sorted(GRAPH.items()):
        if module == "propensity":  # the facade: its lazy table names every layer
            continue
        for target in sorted(targets):
            if target == "propensity":
                continue  # only `from propensity import __version__`, checked below
            source_top, target_top = _top(module), _top(target)
            if source_top in EDGES and target_top in EDGES:
                if source_top != target_top and target_top not in LAUNCHES.get(source_top, ()):
                    wrong.append(f"{module} -> {target} (one edge imports another)")
            elif _layer(target) > _layer(module):
                wrong.append(
                    f"{module} ({LAYERS[_layer(module)][0]}) -> {target} ({LAYERS[_layer(target)][0]})"
                )
    assert not wrong, "imports against the data flow:\n" + "\n".join(wrong)


def test_the_package_root_gives_stages_only_its_version():
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        if module == "propensity":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "propensity" and not node.level:
                names = {a.name for a in node.names} - {_top(m) for m in GRAPH}  # submodules are layered
                if _top(module) not in EDGES:
                    assert names <= {"__version__"}, f"{module} imports {names} from the package root"


def _cycle() -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(GRAPH.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt in GRAPH and not state.get(nxt):
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(GRAPH):
        if not state.get(start):
            found = visit(start)
            if found:
                return found
    return None


def test_no_import_circle():
    cycle = _cycle()
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import propensity.workflows.tables\n", {"propensity.workflows.tables"}),
        ("def f():\n    from propensity.loading import resolve_model\n", {"propensity.loading"}),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import propensity.cli\n", set()),
        ("from . import scoring\n", {"propensity.workflows.scoring"}),
    ],
)
def test_the_walker_sees_function_level_and_relative_imports(source, expected):
    known = {"propensity.workflows.scoring", "propensity.workflows.tables", "propensity.loading"}
    found = set(_imports(ast.parse(source), "propensity.workflows.events", False, known))
    assert found == expected


def test_the_checker_catches_an_upward_import(monkeypatch):
    """A stage reaching into the application layer inside a function is reported."""
    monkeypatch.setitem(GRAPH, "propensity.training.fake", {"propensity.workflows.tables"})
    with pytest.raises(
        AssertionError, match=r"propensity.training.fake \(train\) -> propensity.workflows.tables"
    ):
        test_no_stage_imports_a_later_stage_or_an_edge()
    monkeypatch.setitem(GRAPH, "propensity.workflows.tables", {"propensity.training.fake"})
    assert _cycle() is not None
