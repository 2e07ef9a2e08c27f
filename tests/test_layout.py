"""The package's shape: stages import one way only, no cycles, files and functions of a size
that can be read in one sitting. Read from the source with `ast`, nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "emotion_tl"
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
# stage -> stages it must never import: data flows down the list, never back up.
NEVER = {
    "data": {"model", "evaluation", "figures", "training", "audit"},
    "model": {"evaluation", "figures", "training", "audit"},
    "figures": {"evaluation", "training", "audit"},
    "evaluation": {"training", "audit"},
    "training": {"audit"},
    "demo_faces": {"model", "evaluation", "figures", "training", "audit"},  # the generator
}
# entry points: nothing imports them
TOP = {"cli", "commands", "notebook", "sweep", "__main__", "weights"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """The package's modules that `name` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {m for m in found if m in MODULES and m != "emotion_tl" and m != name}


def stage_of(name: str) -> str:
    return name.split(".")[1] if "." in name else ""


def test_stages_import_one_way_only():
    broken = [
        f"{name} imports {other}"
        for name in MODULES
        for other in imports_of(name)
        if stage_of(other) in NEVER.get(stage_of(name), set())
        or (stage_of(other) in TOP and stage_of(name) not in TOP and not name.endswith("__main__"))
    ]
    assert broken == []


def test_no_import_cycles():
    graph = {name: imports_of(name) for name in MODULES}
    visiting, done, cycles = [], set(), []

    def visit(name: str) -> None:
        if name in visiting:
            cycles.append(visiting[visiting.index(name) :] + [name])
            return
        if name in done:
            return
        visiting.append(name)
        for other in sorted(graph[name]):
            visit(other)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)
    assert cycles == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_and_functions_are_short(name):
    text = MODULES[name].read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES
    long = [
        f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_the_checker_sees_a_forbidden_import(tmp_path, monkeypatch):
    """The rules above would notice a figure importing training (so they can fail)."""
    bad = tmp_path / "figures_bad.py"
    bad.write_text("from emotion_tl.training.loop import fit\n")
    monkeypatch.setitem(MODULES, "emotion_tl.figures.bad", bad)
    assert imports_of("emotion_tl.figures.bad") == {"emotion_tl.training.loop"}
    with pytest.raises(AssertionError):
        test_stages_import_one_way_only()
