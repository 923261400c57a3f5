"""The layout's rules (ARCHITECTURE.md), checked on the source: imports point one way, no cycles,
no private names across modules, every command reachable from the one entry point."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "samwidgets"

#: modules every package may import: samwidgets/errors.py (the user's-mistake error) imports nothing of ours
LEAVES = {"errors"}

#: package -> the packages of ours it may import (besides itself and LEAVES); io, runtime and data are leaves
ALLOWED = {
    "modeling": set(),
    "io": set(),
    "runtime": set(),
    "data": {"io"},
    "hub": {"modeling", "sam2", "io", "runtime"},  # from_pretrained builds SAM 2 models by name
    "sam2": {"modeling", "inference", "io", "runtime"},  # SAM 2 reuses SAM's prompt encoder, decoder parts, cache
    "inference": {"modeling", "io", "runtime"},
    "training": {"modeling", "inference", "io", "runtime", "data"},
    "evaluation": {"modeling", "inference", "hub", "io", "runtime", "data"},
    "tasks": {"modeling", "inference", "hub", "io", "runtime", "data", "evaluation"},
    "text": {"modeling", "inference", "hub", "io", "runtime", "data", "training", "evaluation"},
    "data_engine": {"modeling", "inference", "hub", "io", "runtime", "data", "training", "evaluation"},
    # train_step.py times a training step; reference.py compares SAM 2 with the sam2 package
    "bench": {"modeling", "inference", "hub", "sam2", "io", "runtime", "data", "training"},
    "widget": {"modeling", "inference", "hub", "sam2", "io", "runtime"},
    # the top layer, which only notebooks import; its exercises check answers with the tools their notebooks teach
    "teaching": {"modeling", "inference", "hub", "sam2", "io", "runtime", "data", "training", "evaluation", "tasks",
                 "text", "data_engine", "widget"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(absolute module, imported names) of every ``from ... import`` and ``import`` of ours in path."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] == "samwidgets":
                found.append((module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.split(".")[0] == "samwidgets"]
    return found


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


#: the one entry point (``python -m samwidgets``), which runs the commands
ENTRY_POINT = "samwidgets.__main__"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_one_way(package):
    wrong = []
    for module, path in MODULES.items():
        if _top(module) != package:
            continue
        for target, _ in _imports(path):
            top = _top(target)
            if top and top != package and top not in ALLOWED[package] | LEAVES:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_leaves_import_nothing_of_ours(leaf):
    assert not _imports(MODULES[f"samwidgets.{leaf}"]), f"samwidgets/{leaf}.py must not import samwidgets' modules"


def test_nothing_imports_a_command():
    wrong = [f"{module} imports {target}" for module, path in MODULES.items()
             if _top(module) != "cli" and module != ENTRY_POINT
             for target, _ in _imports(path) if _top(target) == "cli"]
    assert not wrong, "\n".join(wrong)


def test_no_private_names_across_modules():
    wrong = [f"{module} imports {name} from {target}" for module, path in MODULES.items()
             for target, names in _imports(path) for name in names
             if name.startswith("_") and target != module and not name.startswith("__")]
    assert not wrong, "\n".join(wrong)


def test_no_private_attributes_of_other_modules():
    """``module._name`` through an imported module of ours is a private name imported by another door."""
    wrong = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        aliases = {}
        for target, names in _imports(path):
            for name in names:
                if f"{target}.{name}" in MODULES:
                    aliases[name] = f"{target}.{name}"
        for node in ast.walk(tree):
            if isinstance(node, (ast.ImportFrom, ast.Import)):
                for a in node.names:
                    if a.asname and a.name in aliases:
                        aliases[a.asname] = aliases[a.name]
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                wrong.append(f"{module} uses {aliases[node.value.id]}.{node.attr}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles_between_packages():
    """The packages' import graph (every import of every module, __main__ files included) has no cycle:
    a package that imports another is never imported by it, directly or through a third."""
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        if module == ENTRY_POINT or not _top(module) or _top(module) in LEAVES:
            continue
        graph.setdefault(_top(module), set()).update(
            _top(target) for target, _ in _imports(path) if _top(target) not in {"", _top(module)} | LEAVES)
    reaches = {package: set(targets) for package, targets in graph.items()}
    changed = True
    while changed:  # transitive closure: what each package reaches through the others
        changed = False
        for targets in reaches.values():
            more = set().union(*(reaches.get(t, set()) for t in targets)) - targets
            if more:
                targets |= more
                changed = True
    cycles = sorted(f"{package} -> {target} -> ... -> {package}" for package, targets in reaches.items()
                    for target in graph[package] if package in reaches.get(target, set()))
    assert not cycles, "\n".join(cycles)


def test_no_import_cycles_between_modules():
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        edges = set()
        for target, names in _imports(path):
            for candidate in [f"{target}.{n}" for n in names] + [target]:
                if candidate in MODULES and candidate != module:
                    edges.add(candidate)
                    break
        # a package's __init__ re-exporting its own modules is not a cycle of the code
        graph[module] = {t for t in edges if not module == t.rsplit(".", 1)[0]}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]) if nxt in stack else nxt)
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(cycles)


@pytest.mark.slow
def test_every_command_answers_help():
    from samwidgets.cli import COMMANDS

    for name in COMMANDS:
        result = subprocess.run([sys.executable, "-m", "samwidgets", name, "--help"], capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, result.stderr
        assert f"samwidgets {name}" in result.stdout


def test_unknown_command_lists_the_commands():
    result = subprocess.run([sys.executable, "-m", "samwidgets", "trian"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "unknown command 'trian'" in result.stderr and "train" in result.stderr
