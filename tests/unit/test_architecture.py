"""The house rules of DESIGN.md, checked on the source tree: imports point down an order of packages,
no module imports itself in a circle, and task names are spelled only inside ``tasks/``.

The order, lowest first (a package may import only packages of a lower rank, never one of its own
rank; modules inside one package may import each other, and so may the base modules and the front
doors):

    0  entities, errors, config, devices,          the base: plain objects, errors, settings, devices,
       raycluster                                  the connection to a Ray cluster
    1  data                                        readers, column mapping, checks (knows no task)
    2  tasks                                       one module per task (the task interface)
    3  training, evaluation, serving               what is built on the tasks
       catalog, store, runners                     reached only through ``services``
    4  services                                    the use cases
    5  cli, api, ui, client                        the front doors: ``services`` and the base only

Rank 3 packages never import each other: none needs to today. Should a runner ever need the artifact
store (say), add the pair to ``SIDEWAYS`` with the reason, rather than lowering a rank.

Every ``import`` counts, at module level or inside a function, except those under
``if TYPE_CHECKING:`` (they never run). ``fmhub/__init__.py`` and ``fmhub/__main__.py`` are the entry
points: they may import anything, and importing the top package (for ``__version__``) is allowed
everywhere.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "fmhub"

BASE = ("entities", "errors", "config", "devices", "raycluster")
FRONT = ("cli", "api", "ui", "client")
RANKS: dict[str, int] = {
    **dict.fromkeys(BASE, 0),
    "data": 1,
    "tasks": 2,
    **dict.fromkeys(("training", "evaluation", "serving", "catalog", "store", "runners"), 3),
    "services": 4,
    **dict.fromkeys(FRONT, 5),
}
ONLY_UNDER_SERVICES = ("catalog", "store", "runners")
"""Packages that only ``services`` (and the package itself) may import."""
SIDEWAYS: set[tuple[str, str]] = set()
"""(importer, imported) pairs of one rank that are allowed, each with its reason; none today."""
ENTRY = ("__init__", "__main__")
TASK_NAMES = ("text-classification", "token-classification", "question-answering", "summarization",
              "translation", "chat-completion")
"""The task names of DESIGN.md (the registered ones and those to come)."""


# -- reading the tree ------------------------------------------------------------------------------

def module_name(root: Path, path: Path) -> str:
    """``fmhub.services.models`` for ``<root>/fmhub/services/models.py``; a package's ``__init__``
    is the package itself."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of a module, at any depth, except under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same top package it imports.

    Args:
        package_dir: The top package's folder (``src/fmhub``).

    Returns:
        Edges between modules of the package only; ``from fmhub.x import y`` points at the module
        ``fmhub.x.y`` when that is a module, else at ``fmhub.x``.
    """
    root = package_dir.parent
    top = package_dir.name
    paths = {module_name(root, p): p for p in package_dir.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        edges: set[str] = set()
        is_package = path.name == "__init__.py"
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                module = node.module or ""
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[:len(base) - (node.level - 1)]
                    module = ".".join([*base, *([module] if module else [])])
                targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in paths else module
                           for alias in node.names]
            for target in targets:
                while target and target not in paths and "." in target:  # import a.b.c of a module a.b
                    target = target.rsplit(".", 1)[0]
                if target in paths and (target == top or target.startswith(top + ".")) and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def _package(module: str) -> str:
    """The first-level package (or base module) of ``fmhub.x.y``: ``x``; the top package: ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


# -- the checks ------------------------------------------------------------------------------------

def order_violations(package_dir: Path) -> list[str]:
    """Imports against the package order (see the module docstring), as ``importer -> imported``
    lines; an unknown first-level package is a violation too (give it a rank)."""
    bad = []
    for module, targets in sorted(import_graph(package_dir).items()):
        importer = _package(module)
        if importer in ("", *ENTRY):
            continue  # the entry points
        for target in sorted(targets):
            imported = _package(target)
            if imported in ("", importer) or imported in ENTRY:
                continue  # the top package (``__version__``), or inside one package
            why = _why_not(importer, imported)
            if why:
                bad.append(f"{module} -> {target}: {why}")
    return bad


def _why_not(importer: str, imported: str) -> str | None:
    for name in (importer, imported):
        if name not in RANKS:
            return f"{name} has no rank in the package order"
    if imported in ONLY_UNDER_SERVICES and importer != "services":
        return f"only services may import {imported}"
    if importer in FRONT and imported not in ("services", *BASE, *FRONT):
        return "a front door reaches past services"
    if (importer in FRONT and imported in FRONT) or (importer in BASE and imported in BASE):
        return None  # the front doors build on each other (the API mounts the UI); so do base modules
    if RANKS[imported] < RANKS[importer] or (importer, imported) in SIDEWAYS:
        return None
    return f"{importer} (rank {RANKS[importer]}) may not import {imported} (rank {RANKS[imported]})"


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of a module graph: each strongly connected group of two or more modules
    (Tarjan's algorithm), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(groups)


def task_name_spellings(package_dir: Path, names: tuple[str, ...] = TASK_NAMES) -> list[str]:
    """``file:line: name`` for each task name written in a ``.py`` file outside ``tasks/`` (code,
    strings, comments alike; case-insensitive, as a whole word)."""
    pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, names)) + r")(?![\w-])", re.IGNORECASE)
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir)
        if rel.parts[0] == "tasks":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in pattern.finditer(line):
                found.append(f"{rel}:{number}: {match.group(1)}")
    return found


# -- the tree as it is -----------------------------------------------------------------------------

def test_every_package_has_a_rank():
    packages = {p.name.removesuffix(".py") for p in SRC.iterdir()
                if (p.is_dir() and (p / "__init__.py").exists()) or p.suffix == ".py"}
    assert packages - set(ENTRY) - set(RANKS) == set()


def test_imports_follow_the_package_order():
    assert order_violations(SRC) == []


def test_no_import_circles():
    assert import_cycles(import_graph(SRC)) == []


def test_task_names_are_spelled_only_in_tasks():
    from fmhub.tasks import task_names

    assert set(task_names()) <= set(TASK_NAMES)  # a new task's name joins the list above
    assert task_name_spellings(SRC) == []


def test_registry_keys_are_the_task_names():
    from fmhub.tasks import task_class, task_names

    assert [task_class(name).name for name in task_names()] == task_names()


def test_base_modules_import_only_the_base():
    graph = import_graph(SRC)
    for name in BASE:
        assert {_package(t) for t in graph[f"fmhub.{name}"]} <= set(BASE), name


# -- the checks can fail ---------------------------------------------------------------------------

def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    """Write a fake ``fmhub`` package: relative path -> source; every folder gets an ``__init__``."""
    top = tmp_path / "fmhub"
    for rel, text in {"__init__.py": "", **files}.items():
        path = top / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(top).parents:
            (top / parent / "__init__.py").touch()
        path.write_text(text, encoding="utf-8")
    return top


@pytest.mark.parametrize(("files", "expected"), [
    ({"data/mapping.py": "from fmhub.tasks.schema import TaskSchema\n", "tasks/schema.py": ""},
     "fmhub.data.mapping -> fmhub.tasks.schema: data (rank 1) may not import tasks (rank 2)"),
    ({"tasks/base.py": "def f():\n    from fmhub.evaluation import split\n", "evaluation/split.py": ""},
     "fmhub.tasks.base -> fmhub.evaluation.split: tasks (rank 2) may not import evaluation (rank 3)"),
    ({"serving/instance.py": "import fmhub.training.trainer\n", "training/trainer.py": ""},
     "fmhub.serving.instance -> fmhub.training.trainer: serving (rank 3) may not import training (rank 3)"),
    ({"training/x.py": "from fmhub.store import db\n", "store/db.py": ""},
     "fmhub.training.x -> fmhub.store.db: only services may import store"),
    ({"cli/x.py": "from fmhub.tasks import get_task\n", "tasks/__init__.py": "def get_task(): ...\n"},
     "fmhub.cli.x -> fmhub.tasks: a front door reaches past services"),
    ({"entities.py": "from fmhub.data import readers\n", "data/readers.py": ""},
     "fmhub.entities -> fmhub.data.readers: entities (rank 0) may not import data (rank 1)"),
    ({"services/x.py": "from fmhub.api import app\n", "api/app.py": ""},
     "fmhub.services.x -> fmhub.api.app: services (rank 4) may not import api (rank 5)"),
    ({"plugins/x.py": "from fmhub.data import readers\n", "data/readers.py": ""},
     "fmhub.plugins.x -> fmhub.data.readers: plugins has no rank in the package order"),
])
def test_order_checker_finds_a_bad_import(tmp_path, files, expected):
    assert order_violations(_tree(tmp_path, files)) == [expected]


def test_order_checker_passes_good_imports(tmp_path):
    top = _tree(tmp_path, {
        "data/mapping.py": "from fmhub.data.schema import TaskSchema\nfrom fmhub.errors import DataError\n",
        "data/schema.py": "", "errors.py": "",
        "tasks/base.py": "from fmhub.data import mapping\n",
        "services/x.py": "from fmhub.store import db\nfrom fmhub.tasks.base import Task\n", "store/db.py": "",
        "cli/x.py": "from fmhub import __version__\nfrom fmhub.services import x\nfrom fmhub.client import C\n",
        "client.py": "C = 1\n",
        "runners/x.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from fmhub.services.x import Y\n",
    })
    assert order_violations(top) == []


def test_cycle_finder_counts_function_imports(tmp_path):
    top = _tree(tmp_path, {
        "services/models.py": "def show():\n    from fmhub.services.predict import head_problem\n",
        "services/predict.py": "from fmhub.services.models import resolve_model\n",
        "services/other.py": "from fmhub.services import models\n",
        "services/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from fmhub.services import other\n",
    })
    graph = import_graph(top)
    assert graph["fmhub.services.other"] == {"fmhub.services.models"}
    assert graph["fmhub.services.typed"] == set()
    assert import_cycles(graph) == [["fmhub.services.models", "fmhub.services.predict"]]


def test_task_name_finder_finds_a_name(tmp_path):
    top = _tree(tmp_path, {"ui/x.py": 'TASKS = ("Summarization",)  # and more\n',
                           "tasks/x.py": 'name = "summarization"\n',
                           "cli/y.py": "# all-MiniLM-L6-v2-summarization-x is a model name, not a task\n"})
    assert task_name_spellings(top) == ["ui/x.py:1: Summarization"]


def test_test_files_have_unique_names():
    """pytest imports test modules by their file name (the folders have no ``__init__.py``): two
    files with one name stop the whole run at collection."""
    tests = Path(__file__).resolve().parents[1]
    seen: dict[str, list[str]] = {}
    for path in tests.rglob("test_*.py"):
        seen.setdefault(path.name, []).append(str(path.relative_to(tests)))
    assert not {name: where for name, where in seen.items() if len(where) > 1}
