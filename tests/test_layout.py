"""The package's shape, read from the source with `ast` (nothing is imported): the ground modules
import no stage, the stages import one way only, nothing below the entry points imports them, no
import cycles, and modules and functions of a size that can be read in one sitting, measured on
the code as `ruff format` leaves it. Each check returns its problems, and a planted bad module
shows that each check can fail."""

from __future__ import annotations

import ast
import importlib.util
import io
import re
import subprocess
import sys
import tokenize
from collections.abc import Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "emotion_tl"
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
GROUND = ("config", "config_options", "storage", "wheel_file", "npm_file", "device", "distributed")
STAGES = ("data", "model", "figures", "evaluation", "training", "audit")  # data flows down
DEMO = "demo_faces"  # the synthetic-face generator: draws on data, only the top uses it
TOP = ("cli", "commands", "sweep", "weights", "notebook")  # the entry points, and any __main__
# layer -> the other layers its modules may import
MAY_IMPORT = {
    "ground": set(),
    **{stage: {"ground", *STAGES[:i]} for i, stage in enumerate(STAGES)},
    DEMO: {"ground", "data"},
    "top": {"ground", *STAGES, DEMO},
}
# what makes `ruff format` leave code as it was written: `# yapf: disable` means `# fmt: off`
FORMAT_OFF = re.compile(r"fmt:\s*(skip|off)\b|yapf:\s*disable\b")
Modules = Mapping[str, Path]  # module name -> its file


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def read_modules(package: Path) -> dict[str, Path]:
    return {module_name(path, package): path for path in sorted(package.rglob("*.py"))}


MODULES = read_modules(PACKAGE)


def layer_of(name: str) -> str | None:
    """`ground`, a stage, `demo_faces` or `top`; None for a module of no known layer."""
    parts = name.split(".")
    if parts[-1] == "__main__":
        return "top"
    if len(parts) == 1 or parts[1] in GROUND:
        return "ground"
    if parts[1] in TOP:
        return "top"
    return parts[1] if parts[1] in (*STAGES, DEMO) else None


def resolve(name: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module a `from` import reads: `from ..data import files` in
    emotion_tl.model.resnet reads emotion_tl.data."""
    if node.level == 0:
        return node.module
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    base = package[: max(0, len(package) - (node.level - 1))]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(name: str, modules: Modules) -> set[str]:
    """The modules of `modules` that `name` imports, at the top or inside a function."""
    path = modules[name]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            source = resolve(name, path, node)
            found |= {source, *(f"{source}.{alias.name}" for alias in node.names)}
    return {other for other in found if other in modules and other != name}


def layer_problems(name: str, modules: Modules) -> list[str]:
    layer = layer_of(name)
    if layer is None:
        return [f"{name} is in no layer: add it to GROUND, STAGES or TOP"]
    return [
        f"{name} ({layer}) imports {other} ({layer_of(other)})"
        for other in sorted(imports_of(name, modules))
        if layer_of(other) not in {layer, *MAY_IMPORT[layer]}
    ]


def check_ground(modules: Modules) -> list[str]:
    """The ground modules (and the package's __init__) import no other layer."""
    return [
        p
        for name in sorted(modules)
        if layer_of(name) == "ground"
        for p in layer_problems(name, modules)
    ]


def check_stages(modules: Modules) -> list[str]:
    """Every other module imports only earlier layers, and nothing below the top imports it."""
    return [
        p
        for name in sorted(modules)
        if layer_of(name) != "ground"
        for p in layer_problems(name, modules)
    ]


def check_cycles(modules: Modules) -> list[str]:
    """Import cycles, each as `a -> b -> a`."""
    graph = {name: imports_of(name, modules) for name in modules}
    visiting, done, cycles = [], set(), []

    def visit(name: str) -> None:
        if name in visiting:
            cycles.append(" -> ".join([*visiting[visiting.index(name) :], name]))
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
    return cycles


def check_sizes(modules: Modules) -> list[str]:
    """Modules over MAX_MODULE_LINES lines and functions over MAX_FUNCTION_LINES lines."""
    problems = []
    for name, path in sorted(modules.items()):
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            problems.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    problems.append(f"{name}.{node.name} (line {node.lineno}): {length} lines")
    return problems


def check_format_markers(modules: Modules) -> list[str]:
    """Comments that keep `ruff format` off the code (its sizes would not be the formatted ones)."""
    problems = []
    for name, path in sorted(modules.items()):
        for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
            if token.type == tokenize.COMMENT and FORMAT_OFF.search(token.string):
                problems.append(f"{name}, line {token.start[0]}: {token.string}")
    return problems


def find_ruff() -> list[str] | None:
    """The command that runs ruff (a dev dependency, installed beside this Python)."""
    beside = Path(sys.executable).with_name("ruff")
    if beside.is_file():
        return [str(beside)]
    return [sys.executable, "-m", "ruff"] if importlib.util.find_spec("ruff") else None


def check_formatted(ruff: list[str], paths: list[Path]) -> list[str]:
    """The files `ruff format` would change (with the project's settings, from pyproject.toml)."""
    command = [*ruff, "format", "--check", "--no-cache", *map(str, paths)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode == 0:
        return []
    changed = [line for line in done.stdout.splitlines() if line.startswith("Would reformat")]
    return changed or [f"ruff format failed: {done.stdout}{done.stderr}"]


@pytest.fixture
def ruff() -> list[str]:
    command = find_ruff()
    if command is None:
        pytest.skip("ruff is missing: install the dev dependencies (pip install -e '.[dev]')")
    return command


def test_the_package_is_read():
    assert {"emotion_tl", "emotion_tl.device", "emotion_tl.data.faces.detect"} <= set(MODULES)
    assert "emotion_tl.data.files" in imports_of("emotion_tl.data.prepare", MODULES)


def test_ground_modules_import_no_stage():
    assert check_ground(MODULES) == []


def test_stages_import_one_way_only():
    assert check_stages(MODULES) == []


def test_no_import_cycles():
    assert check_cycles(MODULES) == []


def test_modules_and_functions_are_short():
    assert check_sizes(MODULES) == []


def test_no_comment_keeps_the_formatter_off():
    assert check_format_markers(MODULES) == []


def test_the_package_is_formatted(ruff):
    assert check_formatted(ruff, [PACKAGE]) == []


# Planted modules: each check above fails on a bad one (and passes its good neighbours).


def plant(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    """A package under tmp_path with these files (path in the package -> source) and its table."""
    for relative, source in files.items():
        path = tmp_path / "emotion_tl" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return read_modules(tmp_path / "emotion_tl")


@pytest.mark.parametrize(
    ("relative", "source", "problem"),
    [
        (
            "device.py",
            "from emotion_tl.data.transforms import normalize_batch\n",
            "data.transforms",
        ),
        ("config.py", "def load():\n    from emotion_tl.training import loop\n", "training.loop"),
        ("__init__.py", "from .data import transforms\n", "data.transforms"),
        ("storage.py", "from emotion_tl import cli\n", "cli"),
    ],
)
def test_a_ground_module_importing_a_stage_is_caught(tmp_path, relative, source, problem):
    files = {relative: source, "data/transforms.py": "", "training/loop.py": "", "cli.py": ""}
    modules = plant(
        tmp_path, {"storage.py": "", "distributed.py": "import emotion_tl.storage\n", **files}
    )
    [found] = check_ground(modules)
    name = module_name(tmp_path / "emotion_tl" / relative, tmp_path / "emotion_tl")
    assert found.startswith(f"{name} (ground) imports emotion_tl.{problem} (")
    assert check_stages(modules) == []  # the stage modules themselves import nothing


def test_relative_imports_are_resolved(tmp_path):
    modules = plant(
        tmp_path,
        {
            "data/__init__.py": "from . import files\nfrom .split import make_split\n",
            "data/files.py": "",
            "data/split.py": "from .files import load_image\n",
            "model/resnet.py": "from ..data import files\n",
            "training/loop.py": "from .. import commands\n",
            "commands.py": "",
        },
    )
    assert imports_of("emotion_tl.data", modules) == {
        "emotion_tl.data.files",
        "emotion_tl.data.split",
    }
    assert imports_of("emotion_tl.data.split", modules) == {"emotion_tl.data.files"}
    assert imports_of("emotion_tl.model.resnet", modules) == {
        "emotion_tl.data",
        "emotion_tl.data.files",
    }
    assert imports_of("emotion_tl.training.loop", modules) == {"emotion_tl.commands"}


@pytest.mark.parametrize(
    ("relative", "source", "imported"),
    [
        (
            "data/split.py",
            "from ..training.loop import fit\n",
            "emotion_tl.training.loop (training)",
        ),
        (
            "figures/curves.py",
            "from ..evaluation import metrics\n",
            "emotion_tl.evaluation.metrics",
        ),
        ("training/loop.py", "from .. import commands\n", "emotion_tl.commands (top)"),
        (
            "audit/run.py",
            "from emotion_tl.notebook import cleaner\n",
            "emotion_tl.notebook.cleaner",
        ),
        ("demo_faces/scene.py", "from ..model import resnet\n", "emotion_tl.model.resnet (model)"),
        (
            "data/split.py",
            "from emotion_tl.demo_faces import scene\n",
            "emotion_tl.demo_faces.scene",
        ),
    ],
)
def test_an_import_going_the_wrong_way_is_caught(tmp_path, relative, source, imported):
    modules = plant(
        tmp_path,
        {
            "data/split.py": "from .files import load_image\n",
            "data/files.py": "from emotion_tl.config import Config\n",
            "model/resnet.py": "from ..data import files\n",
            "demo_faces/scene.py": "from emotion_tl.data.files import load_image\n",
            "notebook/cleaner.py": "from emotion_tl.demo_faces import scene\n",
            "training/loop.py": "from ..evaluation import metrics\nfrom ..figures import curves\n",
            "evaluation/metrics.py": "",
            "figures/curves.py": "",
            "config.py": "",
            "commands.py": "from emotion_tl.training.loop import fit\n",
            "audit/run.py": "",
        },
    )
    assert check_stages(modules) == []
    modules[module_name(tmp_path / "emotion_tl" / relative, tmp_path / "emotion_tl")].write_text(
        source
    )
    [found] = check_stages(modules)
    assert f" imports {imported}" in found


def test_a_module_in_no_layer_is_caught(tmp_path):
    modules = plant(tmp_path, {"extras/helpers.py": "", "demo_faces/__main__.py": ""})
    assert check_stages(modules) == [
        "emotion_tl.extras.helpers is in no layer: add it to GROUND, STAGES or TOP"
    ]


def test_an_import_cycle_is_caught(tmp_path):
    modules = plant(
        tmp_path,
        {
            "data/a.py": "from .b import x\n",
            "data/b.py": "import emotion_tl.data.c\n",
            "data/c.py": "",
        },
    )
    assert check_cycles(modules) == []
    (tmp_path / "emotion_tl" / "data" / "c.py").write_text(
        "def f():\n    from emotion_tl.data import a\n"
    )
    assert check_cycles(modules) == [
        "emotion_tl.data.a -> emotion_tl.data.b -> emotion_tl.data.c -> emotion_tl.data.a"
    ]


def test_a_long_function_or_module_is_caught(tmp_path):
    body = "    x = 1\n"
    modules = plant(
        tmp_path,
        {
            "data/short.py": "def f():\n" + body * (MAX_FUNCTION_LINES - 1) + "x = 1\n" * 200,
            "data/long.py": "class A:\n    async def g(self):\n"
            + ("    " + body) * MAX_FUNCTION_LINES,
            "model/long.py": "x = 1\n" * (MAX_MODULE_LINES + 1),
        },
    )
    assert check_sizes(modules) == [
        f"emotion_tl.data.long.g (line 2): {MAX_FUNCTION_LINES + 1} lines",
        f"emotion_tl.model.long: {MAX_MODULE_LINES + 1} lines",
    ]


def test_a_comment_that_keeps_the_formatter_off_is_caught(tmp_path):
    modules = plant(
        tmp_path,
        {
            "data/packed.py": "x = [1,2]  # fmt: skip\n# fmt: off\ny = [3,4]\n# fmt: on\n",
            "data/told.py": 'WHY = "no # fmt: skip here: a string is no comment"\n',
        },
    )
    assert check_format_markers(modules) == [
        "emotion_tl.data.packed, line 1: # fmt: skip",
        "emotion_tl.data.packed, line 2: # fmt: off",
    ]


def test_code_ruff_format_would_change_is_caught(ruff, tmp_path):
    packed = tmp_path / "packed.py"
    packed.write_text("x = [1,2]\n")
    assert len(check_formatted(ruff, [packed])) == 1
    packed.write_text("x = [1, 2]\n")
    assert check_formatted(ruff, [packed]) == []
