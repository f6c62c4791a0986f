"""The layout is the architecture: layers import downward only, with no circles.

``explorer`` is a stack of subpackages, from ``core`` at the bottom to the UI at the top
(README, "How it is built"). These tests read every module's imports from its source
(``ast``), so they hold without importing anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The layers, bottom first. A module may import its own subpackage or a lower layer.
LAYERS = {
    "explorer.core": 0,
    "explorer.spec": 1,
    "explorer.init": 2,
    "explorer.view": 3,
    "explorer.engine": 4,
    "explorer.session": 5,
    "explorer.io": 6,
    "explorer.labs": 7,
    "explorer.editions": 7,
    "explorer": 8,  # the public API: explorer/__init__.py, explorer/__main__.py
    "ui": 9,
    "app": 10,
}
OPTIONAL = {"onnx", "onnxruntime", "transformers", "safetensors"}  # may be imported late


def _modules() -> dict[str, Path]:
    found = {"app": ROOT / "app.py"}
    for package in ("explorer", "ui"):
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


_SUBS = {name.split(".")[1] for name in LAYERS if name.startswith("explorer.")}


def _layer(module: str) -> str:
    """The layer a module belongs to: its subpackage, or explorer's top for the API."""
    parts = module.split(".")
    if parts[0] == "explorer" and len(parts) > 1 and parts[1] in _SUBS:
        return f"explorer.{parts[1]}"
    return parts[0]


def _resolve(module: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The project modules an import statement names (a package or one of its modules)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in MODULES]
    base = node.module or ""
    if node.level:
        here = module.split(".")
        package = here if MODULES[module].name == "__init__.py" else here[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
    names = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
    return names or ([base] if base in MODULES else [])


def _type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(module: str) -> tuple[set[str], list[tuple[int, str]]]:
    """A module's project imports at import time, and the ones made inside a function."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    eager: set[str] = set()
    late: list[tuple[int, str]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            return  # annotations only
        if isinstance(node, ast.Import | ast.ImportFrom):
            targets = [t for t in _resolve(module, node) if t != module]
            if in_function:
                late.extend((node.lineno, t) for t in targets)
            else:
                eager.update(t for t in targets if not module.startswith(f"{t}."))
        inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, False)
    return eager, late


GRAPH = {module: _imports(module) for module in MODULES}


def test_every_module_belongs_to_a_layer():
    """Each module of explorer/ sits in one of the named subpackages (or is the API)."""
    assert {_layer(m) for m in MODULES} <= set(LAYERS), sorted(
        {_layer(m) for m in MODULES} - set(LAYERS)
    )


def test_imports_run_down_the_layers_only():
    """No module imports a layer above its own, nor a sibling layer of the same height."""
    upward = [
        f"{m} -> {t}"
        for m, (eager, _) in GRAPH.items()
        for t in eager
        if _layer(t) != _layer(m) and LAYERS[_layer(t)] >= LAYERS[_layer(m)]
    ]
    assert upward == []


def test_the_import_graph_has_no_circles():
    """Following imports from any module never comes back to it."""
    circles, done, path = [], set(), []

    def walk(m: str) -> None:
        if m in path:
            circles.append(path[path.index(m) :] + [m])
            return
        if m in done:
            return
        path.append(m)
        for t in sorted(GRAPH[m][0]):
            walk(t)
        path.pop()
        done.add(m)

    for module in sorted(MODULES):
        walk(module)
    assert circles == []


def test_no_project_import_is_made_inside_a_function():
    """Imports sit at the top of a module, where the layering can see them."""
    late = [f"{m}:{line} imports {t}" for m, (_, found) in GRAPH.items() for line, t in found]
    assert late == []


def test_the_core_never_imports_streamlit():
    """explorer/ is the tested core for notebooks and tests: no UI library in it."""
    offenders = []
    for module, path in MODULES.items():
        if not module.startswith("explorer"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                names.append(getattr(node, "module", None) or "")
                if any(n.split(".")[0] == "streamlit" for n in names):
                    offenders.append(module)
    assert offenders == []


def test_late_imports_are_optional_dependencies_only():
    """A third-party import inside a function is one the package may lack (onnx, ...)."""
    late = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import | ast.ImportFrom) and not getattr(node, "level", 0):
                    names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                    names.append(getattr(node, "module", None) or "")
                    roots = {n.split(".")[0] for n in names if n}
                    if roots - OPTIONAL - {"explorer", "ui"}:
                        late.append(f"{module}:{node.lineno} {sorted(roots)}")
    assert late == []


def test_no_file_name_appears_twice_across_the_package_and_the_app():
    """A name says where a thing is: explorer/ and ui/ share no module name."""
    names: dict[str, list[str]] = {}
    for module, path in MODULES.items():
        if path.name != "__init__.py":
            names.setdefault(path.stem, []).append(module)
    assert {n: ms for n, ms in names.items() if len(ms) > 1} == {}
