"""Rules of the code base that a test can hold: no ``.cuda()`` literals, no global RNG seeding in the
library, no module past ~400 lines."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for d in ("dgl_emu", "benchmarks") for p in (ROOT / d).rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_rules(path):
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"\.cuda\(\)", text), "a .cuda() literal: take a device argument"
    assert len(text.splitlines()) <= 420, f"{len(text.splitlines())} lines: split the module by job"
    if path.is_relative_to(ROOT / "dgl_emu"):
        assert not re.search(r"torch\.manual_seed\(|np\.random\.seed\(|random\.seed\(", text), \
            "global RNG seeding: use a torch.Generator"
