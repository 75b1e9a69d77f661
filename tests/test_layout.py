"""The package reads as the pipeline: layers that import only downwards, no cycle between modules,
no loose module at the top, and one module per `pekit` sub-command, each imported by cli.py.

Every import counts: at module level and inside functions, absolute and relative.
"""

from __future__ import annotations

import argparse
import ast
import importlib
from pathlib import Path

import pytest

import pekit
from pekit import cli

PACKAGE = Path(pekit.__file__).resolve().parent

# The layers, lowest first: a module imports from its own package, or from a lower layer.
LAYERS = [
    ("core",),  # 0: errors, files, argument types, where the checkout is; stdlib only
    ("facts",),  # 1: pins, vocabulary, settings, models, datasets (the JSON files beside them)
    ("setup",),  # 2: prepare, patching, MMF's source, wheelhouse, GPU bundle, the node
    ("data", "assets", "features", "mmf_plugin"),  # 3: what a run reads (see WITHIN)
    ("run",),  # 4: the runner, its records and MMF's logs
    ("report", "adapters", "bench"),  # 5: what is made of finished runs, and the bench
    ("workflows",),  # 6: several stages in a row (reproduce, study, demo, doctor, gpu-check)
    ("commands",),  # 7: one module per sub-command: argparse glue
    ("cli",),  # 8: the `pekit` command
    ("__main__",),  # 9: `python -m pekit`
]
# Inside layer 3: assets may import data; features may import data and assets.
WITHIN = {"data": 0, "mmf_plugin": 0, "assets": 1, "features": 2}
TOP_MODULES = {"__init__.py", "__main__.py", "cli.py"}
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name, path):
    """(line, imported module) of every pekit import in the module, resolved to a module."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "pekit"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != "pekit":
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append((node.lineno, full if full in MODULES else base))
    return found


def where(name):
    """(layer, top package) of a module; the package root (pekit/__init__) has no layer."""
    parts = name.split(".")
    if len(parts) == 1:
        return None, None
    top = parts[1]
    assert top in LAYER, f"{name}: pekit.{top} is in no layer of tests/test_layout.py"
    return LAYER[top], top


def allowed(source, target):
    (layer, top), (t_layer, t_top) = where(source), where(target)
    if t_layer is None or top == t_top:
        return True  # the package root's __version__, or the module's own package
    if t_layer != layer:
        return t_layer < layer
    return top in WITHIN and t_top in WITHIN and WITHIN[t_top] < WITHIN[top]


def test_every_import_points_down():
    wrong = []
    for name, path in MODULES.items():
        for line, target in imports(name, path):
            if target not in MODULES:
                wrong.append(f"{path.relative_to(PACKAGE)}:{line}: {target}: no such module")
            elif not allowed(name, target):
                wrong.append(
                    f"{path.relative_to(PACKAGE)}:{line}: imports {target} "
                    f"(layer {where(name)[0]} {where(name)[1]} -> layer {where(target)[0]} "
                    f"{where(target)[1]})"
                )
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_the_package_root_imports_nothing_of_the_kit():
    assert imports("pekit", PACKAGE / "__init__.py") == []


def test_no_cycle_between_modules():
    graph = {
        n: {t for _, t in imports(n, p) if t in MODULES and t != n} for n, p in MODULES.items()
    }
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, "modules importing each other: " + "; ".join(", ".join(c) for c in cycles)


def test_no_loose_module_at_the_top():
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in TOP_MODULES)
    assert not loose, f"modules at the package's top, outside every layer: {loose}"
    folders = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert set(folders) == set(LAYER) - {"cli", "__main__"}, folders


COMMANDS = sorted(p.stem for p in (PACKAGE / "commands").glob("*.py") if p.stem != "__init__")


def test_cli_imports_every_command_module_directly():
    tree = ast.parse((PACKAGE / "cli.py").read_text(encoding="utf-8"))
    direct = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module == "commands":
            direct |= {a.name for a in node.names}
        assert not (isinstance(node, ast.Import) and node.names[0].name == "importlib"), (
            "cli.py loads commands by name"
        )
    assert direct == set(COMMANDS)
    assert {m.__name__.rsplit(".", 1)[1] for m in cli.COMMANDS} == set(COMMANDS)


def _choices(parser):
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(action.choices)


@pytest.mark.parametrize("name", COMMANDS)
def test_each_command_module_registers_its_command(name):
    module = importlib.import_module(f"pekit.commands.{name}")
    parser = argparse.ArgumentParser(prog="pekit")
    module.register(parser.add_subparsers())
    assert _choices(parser) == [name.replace("_", "-")]


def test_the_parser_has_every_command_once():
    assert sorted(_choices(cli.build_parser())) == sorted(c.replace("_", "-") for c in COMMANDS)
