"""The README's setup commands are the ones CI runs, and they name real things."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands():
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)


def test_ci_runs_the_readme_test_command_verbatim():
    test_cmd = _readme_commands()[1].strip()
    assert "pytest" in test_cmd
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_cmd in ci.splitlines()


def test_main_command_runs_dgl_emu_run_and_pins_are_used():
    main_cmd = _readme_commands()[0]
    assert main_cmd.strip().endswith("dgl-emu run")
    assert "-c constraints.txt" in main_cmd
    pins = (ROOT / "constraints.txt").read_text()
    assert re.search(r"^torch==2\.13\.0$", pins, flags=re.M)
    assert re.search(r"^dgl==1\.1\.3$", pins, flags=re.M)
