"""Spreadsheet-safe CSV: every CSV/TSV file llmplay writes goes through ``csv_text``.

Excel, LibreOffice and Google Sheets read a text cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return as a formula, so a labeler's ``=HYPERLINK(...)`` would run when an admin opens an export.
Such cells get a leading single quote (OWASP's CSV-injection rule): the spreadsheet shows the text as typed.
Numbers, and text that is only a number ("-3", "+1.5"), cannot run anything and stay as they are. JSON and
JSONL exports are data, not spreadsheets, and stay raw.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """``value`` with a leading ``'`` if it is text a spreadsheet would read as a formula; else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_text(rows: Iterable[Mapping[str, Any]], fieldnames: Sequence[str], *, delimiter: str = ",") -> str:
    """A header and one line per row (missing keys and None as empty cells), every cell made safe."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow([safe_cell(name) for name in fieldnames])
    writer.writerows([safe_cell(row.get(name)) for name in fieldnames] for row in rows)
    return buffer.getvalue()
