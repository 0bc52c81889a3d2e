"""Nothing in ``services/`` starts a process or a thread: runners and serving backends do."""

from __future__ import annotations

import ast
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "src" / "fmhub" / "services"
MODULES = {"threading", "subprocess", "multiprocessing", "concurrent.futures"}
NAMES = {"Thread", "Popen", "fork", "forkpty", "spawnv", "spawnve", "posix_spawn", "Process",
         "ThreadPoolExecutor", "ProcessPoolExecutor", "start_new_thread"}


def _offences(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [f"imports {a.name}" for a in node.names if a.name.split(".")[0] in MODULES or a.name in MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module in MODULES or node.module.split(".")[0] in MODULES - {"concurrent.futures"}:
                found.append(f"imports from {node.module}")
            found += [f"imports {a.name}" for a in node.names if a.name in NAMES]
        elif isinstance(node, ast.Attribute) and node.attr in NAMES:
            found.append(f"uses .{node.attr}")
        elif isinstance(node, ast.Name) and node.id in NAMES:
            found.append(f"uses {node.id}")
    return [f"{path.name}:{what}" for what in found]


def test_no_module_in_services_starts_a_process_or_a_thread():
    offences = [o for path in sorted(SERVICES.rglob("*.py")) for o in _offences(path)]
    assert offences == []


def test_the_check_finds_what_it_looks_for(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os, subprocess\nfrom threading import Thread\nos.fork()\n"
                   "import multiprocessing as mp\nsubprocess.Popen(['x'])\n", encoding="utf-8")
    found = _offences(bad)
    assert {"bad.py:imports subprocess", "bad.py:imports Thread", "bad.py:uses .fork",
            "bad.py:imports multiprocessing", "bad.py:uses .Popen"} <= set(found)
