"""benchmarks/quality_table.py: Markdown tables to RST for the docs."""
from __future__ import annotations

import importlib.util

import docutils.core

from .conftest import BENCHMARKS


def _module():
    spec = importlib.util.spec_from_file_location("quality_table", BENCHMARKS / "quality_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


MD = """# Results: demo

Intro text, dropped.

| a | b |
|---|---|
| 1 | x "y" |

Second table's caption:

| c | d | e |
|---|---|---|
| 2 | 3 | 4 |
"""


def test_every_markdown_table_becomes_its_own_csv_table():
    rst = _module().rst_table(MD)   # aggregate.py's, imported by quality_table.py
    assert rst == (".. csv-table::\n   :header-rows: 1\n\n"
                   '   "a", "b"\n   "1", "x ""y"""\n\n'
                   "Second table's caption:\n\n"
                   ".. csv-table::\n   :header-rows: 1\n\n"
                   '   "c", "d", "e"\n   "2", "3", "4"\n')
    # and docutils renders it without complaint: two tables, the caption between them
    html = docutils.core.publish_string(rst, writer="html",
                                        settings_overrides={"halt_level": 2, "report_level": 2}).decode()
    assert html.count("<table") == 2 and "x &quot;y&quot;" in html and "caption:" in html
