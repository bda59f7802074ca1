"""The documentation: it builds without warnings, its tutorial runs, its commands exist."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
COMMAND_LINE = re.compile(r"^\s*(?:\$\s+)?(dgl-emu(?:\s.*)?)$")


def documented_commands(page: Path) -> list:
    """Argument lists (without ``dgl-emu``) of the lines of ``page`` that start with ``dgl-emu``.

    Lines may start with a ``$ `` prompt; ``#`` comments are dropped.
    """
    commands = []
    for line in page.read_text(encoding="utf-8").splitlines():
        m = COMMAND_LINE.match(line)
        if m:
            words = shlex.split(m.group(1), comments=True)
            commands.append(words[1:])
    return commands


def _subcommand_path(args: list) -> list:
    """The command names in ``args``: ``["datasets", "info"]`` for ``datasets --data-dir D info X``."""
    import click

    from dgl_emu.cli import main

    names, group, i = [], main, 0
    while isinstance(group, click.Group) and i < len(args):
        word = args[i]
        if word.startswith("-"):
            option = next((p for p in group.params if word.split("=")[0] in p.opts), None)
            takes_value = option is not None and not getattr(option, "is_flag", False) and "=" not in word
            i += 2 if takes_value else 1
            continue
        names.append(word)
        group = group.commands.get(word)
        i += 1
    return names


# ------------------------------------------------------------------ (a) the Sphinx build
def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("sphinx_click")
    pytest.importorskip("numpydoc")
    out = tmp_path / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stderr}\n{proc.stdout}"
    # numpydoc reports non-standard docstring sections as Python warnings, which -W does not catch
    assert "Unknown section" not in proc.stderr, proc.stderr
    for page in ("index", "installation", "quickstart", "concepts", "data", "cli", "tutorial_dgl",
                 "benchmarks", "encoders", "interactions", "api/index", "api/emu", "api/interactions"):
        assert (out / f"{page}.html").is_file(), page
    cli = (out / "cli.html").read_text(encoding="utf-8")
    for command in ("run", "evaluate", "predict", "datasets", "components"):
        assert f'id="dgl-emu-{command}"' in cli, command
    tutorial = (out / "tutorial_dgl.html").read_text(encoding="utf-8")
    assert "EmbeddingMutation" in tutorial and "as_edge_prediction_sampler" in tutorial


# ------------------------------------------------------------------ (b) the tutorial script
def test_tutorial_script_runs():
    # one OpenMP thread: the script is tiny, and on a busy machine (parallel test runs) spinning
    # OpenMP threads of torch and DGL make it 10x slower; the result does not depend on it
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(DOCS / "tutorial_dgl.py")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, f"tutorial failed:\n{proc.stdout}\n{proc.stderr}"
    m = re.search(r"test MRR ([0-9.]+), Hits@10 [0-9.]+ \(random ranking: MRR ([0-9.]+)\)", proc.stdout)
    assert m, proc.stdout
    assert float(m.group(1)) > float(m.group(2))


def test_tutorial_page_includes_every_section_of_the_script():
    script = (DOCS / "tutorial_dgl.py").read_text(encoding="utf-8")
    page = (DOCS / "tutorial_dgl.rst").read_text(encoding="utf-8")
    sections = re.findall(r"^# \[([a-z-]+)\]$", script, flags=re.M)
    assert sections, "the script has no [section] markers"
    for name in sections:
        assert f"# [/{name}]" in script, name
        assert f":start-after: # [{name}]" in page, f"section {name!r} is not shown on the page"


# ------------------------------------------------------------------ (c) documented commands
def test_quickstart_commands_are_real_commands():
    from dgl_emu.cli import main

    commands = documented_commands(DOCS / "quickstart.rst")
    names = {args[0] for args in commands if args and not args[0].startswith("-")}
    assert {"run", "evaluate", "predict"} <= names, names
    unknown = names - set(main.commands)
    assert not unknown, f"quickstart.rst names commands that dgl-emu does not have: {unknown}"


@pytest.mark.parametrize("page", ["quickstart.rst", "data.rst", "installation.rst", "interactions.rst"])
def test_documented_command_lines_parse(page):
    """Every ``dgl-emu ...`` line resolves to existing (sub)commands and options.

    ``--help`` is eager, so click resolves the subcommands and parses every option (an unknown
    command or option fails with exit code 2) without running anything.
    """
    from click.testing import CliRunner

    from dgl_emu.cli import main

    commands = documented_commands(DOCS / page)
    assert commands, f"{page} shows no dgl-emu command"
    runner = CliRunner()
    for args in commands:
        path = _subcommand_path(args)
        group = main
        for name in path:
            assert name in group.commands, f"{page}: 'dgl-emu {shlex.join(args)}': no command {name!r}"
            group = group.commands[name]
        result = runner.invoke(main, args + ["--help"])
        assert result.exit_code == 0, f"{page}: 'dgl-emu {shlex.join(args)}':\n{result.output}"
        if "--version" not in args:
            assert "Usage: " in result.output


# ------------------------------------------------------------------ (d) the extending page
def test_extending_page_worked_example_runs_as_a_doctest():
    """The new sampler of docs/extending.rst registers, trains and passes its template test case
    (in its own process: the page registers a sampler that the rest of the suite must not see)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tests"), OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, "-m", "doctest", "-o", "NORMALIZE_WHITESPACE",
                           str(DOCS / "extending.rst")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ">>>" in (DOCS / "extending.rst").read_text(encoding="utf-8")


def test_interactions_page_examples_run_as_a_doctest():
    """The scores shown on docs/interactions.rst are the interactions' own."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, "-m", "doctest", "-o", "NORMALIZE_WHITESPACE",
                           str(DOCS / "interactions.rst")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (DOCS / "interactions.rst").read_text(encoding="utf-8").count(">>> ") >= 8


def test_plugins_register_components_for_the_cli(tmp_path):
    (tmp_path / "my_plugin.py").write_text(
        "from dgl_emu.sampling import SAMPLERS, UniformNegativeSampler\n"
        "SAMPLERS.register('my-uniform')(type('MyUniform', (UniformNegativeSampler,), {}))\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path), DGL_EMU_PLUGINS="my_plugin")
    proc = subprocess.run([sys.executable, "-m", "dgl_emu", "run", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0 and "my-uniform" in proc.stdout, proc.stderr
    env["DGL_EMU_PLUGINS"] = "no_such_plugin"
    proc = subprocess.run([sys.executable, "-m", "dgl_emu", "components"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 1 and proc.stderr.startswith("Error: DGL_EMU_PLUGINS") and "Traceback" not in proc.stderr
