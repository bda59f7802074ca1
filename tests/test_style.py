"""Rules of the code base that a test can hold: no ``.cuda()`` literals, no global RNG seeding in the
library, no module past ~600 lines (a module holds one idea: a guideline for reading, not a number to
hit), no import cycle (function-level imports counted), a reason on every function-level import,
and the import contracts of ``.importlinter``."""
from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for d in ("dgl_emu", "benchmarks") for p in (ROOT / d).rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_rules(path):
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"\.cuda\(\)", text), "a .cuda() literal: take a device argument"
    assert len(text.splitlines()) <= 600, f"{len(text.splitlines())} lines: does it hold one idea?"
    if path.is_relative_to(ROOT / "dgl_emu"):
        assert not re.search(r"torch\.manual_seed\(|np\.random\.seed\(|random\.seed\(", text), \
            "global RNG seeding: use a torch.Generator"


PACKAGE = ROOT / "dgl_emu"


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set):
    """``(node, in_function, targets)`` of every import of ``path`` that names dgl_emu modules."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name, is_pkg = _module(path), path.name == "__init__.py"
    inside = {id(sub) for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
              for sub in ast.walk(node)}
    typing_only = {id(sub) for node in ast.walk(tree)
                   if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) for sub in ast.walk(node)}
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            base = name.split(".") if is_pkg else name.split(".")[:-1]
            base = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else node.module
            wanted = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            wanted = [a.name for a in node.names]
        targets = set()
        for t in wanted:
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t and t != name:
                targets.add(t)
        yield node, id(node) in inside, targets


def test_no_import_cycle_counting_function_level_imports():
    """Layers point one way: the module graph of dgl_emu, with the imports inside functions,
    has no cycle."""
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {_module(p) for p in paths}
    graph = nx.DiGraph()
    for path in paths:
        for _, _, targets in _imports(path, modules):
            graph.add_edges_from((_module(path), t) for t in targets)
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert not cycles, cycles


def test_function_level_imports_give_their_reason():
    """An import inside a function exists only for start-up cost (torch, DGL, Optuna,
    matplotlib, tensorboard) and says so on its line."""
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        for func in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            for node in ast.walk(func):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and "start-up cost" not in lines[node.lineno - 1]:
                    missing.append(f"{path.relative_to(ROOT)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not missing, "\n".join(missing)


def test_import_contracts_hold():
    """``lint-imports`` keeps the floors, placement-free and EMU-pure contracts of .importlinter."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is in the test extras"
    proc = subprocess.run([exe, "--config", str(ROOT / ".importlinter")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "broken" in proc.stdout and "0 broken" in proc.stdout
