"""The package's layers, enforced by reading every module's imports (ast, nothing imported).

- `domain/` is pure: no kopf, no Kubernetes client, none of the operator's Kubernetes glue;
- `workloads/` (what Jobs and model servers run) never imports the operator's `handlers/`;
- `sandbox/` (the local cluster) is used only by itself, by `demo/`, and by the command-line
  entry points that launch it;
- no import cycles between modules, lazy (function-level) imports included: a cycle hidden in a
  function is still two modules that cannot be understood, tested or split apart alone.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "operator" / "kadence"
ROOT = "kadence"

# Modules allowed to import kadence.sandbox besides sandbox/ and demo/: the CLI commands that
# start, stop or point at the local cluster.
SANDBOX_LAUNCHERS = {"kadence.cli", "kadence.commands.demo", "kadence.commands.cluster"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}


MODULES = all_modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(tree: ast.AST):
    """Every node, the bodies of `if TYPE_CHECKING:` left out (they are not run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def imports_of(name: str, path: Path) -> set[str]:
    """The absolute names `name` imports: kadence modules resolved to the module (or package)
    they load, anything else by its top-level name (kopf, kubernetes, ...)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in _walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(_resolve(alias.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in MODULES else _resolve(target))
    return found


def _resolve(target: str) -> str:
    if not target.startswith(ROOT + ".") and target != ROOT:
        return target.split(".")[0]
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def in_layer(module: str, layer: str) -> bool:
    prefix = f"{ROOT}.{layer}"
    return module == prefix or module.startswith(prefix + ".")


def violations(source_layer: str, forbidden) -> list[str]:
    return sorted(f"{module} imports {imported}"
                  for module, imported_set in GRAPH.items() if in_layer(module, source_layer)
                  for imported in imported_set if forbidden(imported))


def test_the_domain_imports_no_kubernetes_machinery():
    assert violations("domain", lambda m: m in ("kopf", "kubernetes", "kubernetes_asyncio")
                      or in_layer(m, "k8s") or in_layer(m, "handlers")) == []


def test_workloads_never_import_the_operators_handlers():
    assert violations("workloads", lambda m: in_layer(m, "handlers")) == []


def test_only_the_sandbox_the_demo_and_the_commands_that_launch_it_import_the_sandbox():
    users = sorted(f"{module} imports {imported}" for module, imported_set in GRAPH.items()
                   for imported in imported_set
                   if in_layer(imported, "sandbox") and not in_layer(module, "sandbox")
                   and not in_layer(module, "demo") and module not in SANDBOX_LAUNCHERS)
    assert users == []


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components with more than one module (or a self-import)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root] & graph.keys())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child] & graph.keys()))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    components.append(sorted(component))
    return components


def test_there_are_no_import_cycles_between_modules():
    # A package's __init__ importing its own submodules (to re-export them) is how packages are
    # built, not a cycle between two pieces of code: those edges are left out.
    graph = {module: {m for m in imported if not (MODULES[module].name == "__init__.py"
                                                  and m.startswith(module + "."))}
             for module, imported in GRAPH.items()}
    cycles = strongly_connected(graph)
    assert cycles == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("graph, expected", [
    pytest.param({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]], id="two modules importing each other"),
    pytest.param({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]], id="a cycle through three"),
    pytest.param({"a": {"b"}, "b": set(), "c": {"a", "b"}}, [], id="a tree has none"),
])
def test_the_cycle_finder_finds_what_it_should(graph, expected):
    assert strongly_connected(graph) == expected


def test_the_import_reader_resolves_relative_and_lazy_imports():
    handlers = GRAPH["kadence.handlers.common"]
    assert "kopf" in handlers and "kadence.planners.plan" in handlers and "kadence.api.conditions" in handlers
    assert len(MODULES) > 100
    lazy = ast.parse("def f():\n    from .sibling import x\n    import kopf\n")
    assert {node.module if isinstance(node, ast.ImportFrom) else node.names[0].name for node in _walk(lazy)
            if isinstance(node, (ast.Import, ast.ImportFrom))} == {"sibling", "kopf"}
    assert "kadence.domain.monitoring.policy" in GRAPH["kadence.commands.demo"] or \
        "kadence.api.common" in GRAPH["kadence.commands.demo"]  # imported inside a function there


@pytest.mark.parametrize("name, home", [
    ("parse_duration", "kadence.api.common"),  # one duration type (issue 16.7)
    ("StageChange", "kadence.domain.registry"),  # one stage change; api.modelversion has its history entry
])
def test_one_definition_of_each_shared_concept(name, home):
    defined = sorted(module for module, path in MODULES.items()
                     for node in ast.walk(ast.parse(path.read_text()))
                     if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name
                     and not module.startswith("kadence.sandbox"))
    assert defined == [home]
