"""Imports point down (DESIGN.md): front doors -> services -> components -> entities/errors/config."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "fmhub"
FRONT = {"cli", "api", "ui", "client"}
ENTRY = {"__init__", "__main__"}  # the package's entry points may name any front door
COMPONENTS = {"catalog", "data", "tasks", "training", "evaluation", "serving", "runners", "store"}
BASE = {"entities", "errors", "config"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fmhub."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("fmhub."):
                    found.add(alias.name.split(".")[1])
    return found


def test_imports_point_down():
    bad = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).parts
        layer = rel[0].removesuffix(".py") if len(rel) > 1 else rel[0].removesuffix(".py")
        used = _imports(path) - {layer}
        if layer in ENTRY:
            continue
        if layer in FRONT:
            allowed = {"services"} | BASE | FRONT
        elif layer == "services":
            allowed = COMPONENTS | BASE
        elif layer in COMPONENTS:
            allowed = COMPONENTS | BASE
        else:
            allowed = BASE
        for u in used - allowed:
            bad.append(f"{path.relative_to(SRC)} imports fmhub.{u}")
    assert bad == []


def test_base_modules_import_nothing_above():
    for name in BASE:
        assert _imports(SRC / f"{name}.py") <= BASE
