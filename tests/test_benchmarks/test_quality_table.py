"""``python -m benchmarks report``: the quality pairs' table, and Markdown tables to RST for the docs."""
from __future__ import annotations

import json
import shutil

import docutils.core

from benchmarks.agglib.quality import QUALITY, quality_table, write_quality_table
from benchmarks.agglib.report import rst_table


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
    rst = rst_table(MD)   # aggregate's, also used by report and the tuned summary
    assert rst == (".. csv-table::\n   :header-rows: 1\n\n"
                   '   "a", "b"\n   "1", "x ""y"""\n\n'
                   "Second table's caption:\n\n"
                   ".. csv-table::\n   :header-rows: 1\n\n"
                   '   "c", "d", "e"\n   "2", "3", "4"\n')
    # and docutils renders it without complaint: two tables, the caption between them
    html = docutils.core.publish_string(rst, writer="html",
                                        settings_overrides={"halt_level": 2, "report_level": 2}).decode()
    assert html.count("<table") == 2 and "x &quot;y&quot;" in html and "caption:" in html


def test_one_row_per_quality_result(tmp_path):
    for path in sorted(QUALITY.glob("*.json"))[:2]:
        shutil.copy(path, tmp_path)
    text = write_quality_table(tmp_path)
    assert (tmp_path / "summary.md").read_text() == text == quality_table(tmp_path)
    assert (tmp_path / "summary.rst").read_text() == rst_table(text)
    rows = text.splitlines()[2:]
    assert [r.split(" | ")[0] for r in rows] == [f"| {json.loads(p.read_text())['name']}"
                                               for p in sorted(tmp_path.glob("*.json"))]


def test_the_committed_table_is_the_reports():
    assert (QUALITY / "summary.md").read_text() == quality_table()
