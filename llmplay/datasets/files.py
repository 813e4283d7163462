"""Reading uploaded tables: CSV, TSV, JSON, JSONL and Parquet, each into a DataFrame of strings.

Every table becomes a DataFrame of strings (empty cells are "", never NaN), whatever the upload's format.
CSV/TSV/JSON/JSONL are parsed with the standard library rather than ``pd.read_csv``/``pd.read_json``:
pandas silently pads short CSV rows, renames duplicate headers ("a" -> "a.1") and reports no line for
most problems, and a user fixing a file needs the line. Parquet goes through pandas/pyarrow.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from llmplay.datasets.errors import DatasetError
from llmplay.settings import Settings

MAX_ROWS = 100_000  # an evaluation over more rows than this is a batch job, not an upload
MAX_COLUMNS = 1_000  # a prompt maps a few columns; a wider table is a mistake (or a million-column bomb)
# Parquet is compressed: a small file can hold gigabytes of repeated text. What a Parquet upload may expand
# to, at most, as a multiple of the upload limit (plain-text formats are read at their own size).
PARQUET_EXPANSION = 4
FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
_BINARY_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive (or an Excel .xlsx file)",
    b"\x1f\x8b": "a gzip archive",
    b"PAR1": "a Parquet file",
    b"\xd0\xcf\x11\xe0": "an old Office document (e.g. .xls)",
}
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


@dataclass(frozen=True)
class Table:
    """A parsed upload: every cell a string."""

    df: pd.DataFrame
    format: str  # csv, tsv, json, jsonl, parquet
    encoding: str | None  # utf-8, utf-8-sig (UTF-8 with BOM), latin-1; None for Parquet
    filename: str

    @property
    def columns(self) -> list[str]:
        return list(self.df.columns)


@dataclass(frozen=True)
class Preview:
    columns: list[str]
    rows: list[dict[str, str]]  # the first rows
    total_rows: int
    format: str
    encoding: str | None
    filename: str


def read_table(path: Path | str, settings: Settings, *, max_rows: int = MAX_ROWS, filename: str = "") -> Table:
    """Read an uploaded file into a Table; DatasetError with a clear message for anything unusable.

    ``filename``: the name the user uploaded (Gradio stores uploads under temp names); defaults to the path's.
    """
    path = Path(path)
    filename = filename or path.name
    fmt = FORMATS.get(Path(filename).suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(FORMATS))
        raise DatasetError(f"{filename}: unknown file type {Path(filename).suffix or '(none)'!r}; use one of {known}.")
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        # Uploads are deleted once saved (llmplay.tempfiles), and swept when left for a day.
        raise DatasetError(f"{filename} is no longer on the server: upload it again.") from None
    if size == 0:
        raise DatasetError(f"{filename} is empty.")
    if size > settings.upload_max_bytes:
        raise DatasetError(
            f"{filename} is {_human(size)}; the upload limit is {_human(settings.upload_max_bytes)} "
            "(setting upload_max_bytes, env LLMPLAY_UPLOAD_MAX_BYTES)."
        )
    if fmt == "parquet":
        df = _read_parquet(path, filename, max_rows, settings.upload_max_bytes * PARQUET_EXPANSION)
        encoding = None
    else:
        text, encoding = _decode(path.read_bytes(), filename)
        try:
            columns, rows = _PARSERS[fmt](text, filename, max_rows)
        except RecursionError:  # json nests one Python call per level: [[[[...]]]] 200,000 deep
            raise DatasetError(f"{filename} is nested too deeply (lists or objects inside each other).") from None
        df = _frame(columns, rows, filename)
    return Table(df=df, format=fmt, encoding=encoding, filename=filename)


def preview(table: Table, n: int = 5) -> Preview:
    head = table.df.head(n)
    return Preview(
        columns=table.columns,
        rows=head.to_dict(orient="records"),
        total_rows=len(table.df),
        format=table.format,
        encoding=table.encoding,
        filename=table.filename,
    )


def _decode(data: bytes, filename: str) -> tuple[str, str]:
    """UTF-8 with BOM, then UTF-8, then latin-1 (which decodes any byte, so binary is refused first)."""
    if data.startswith(_UTF16_BOMS):
        raise DatasetError(f"{filename} is UTF-16 text; save it as UTF-8 (e.g. 'CSV UTF-8' in Excel) and upload again.")
    for magic, what in _BINARY_MAGIC.items():
        if data.startswith(magic):
            raise DatasetError(f"{filename} is {what}, not a text table.")
    head = data[:65536]
    controls = sum(1 for b in head if b < 32 and b not in b"\t\n\r\f\v")
    if b"\x00" in head or controls > len(head) * 0.01:
        raise DatasetError(f"{filename} looks like a binary file (or UTF-16/32 text), not UTF-8 or latin-1 text.")
    if data.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    else:
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            encoding = "latin-1"
    return data.decode(encoding), encoding


def _read_csv(text: str, filename: str, max_rows: int, delimiter: str = ",") -> tuple[list[str], list[list[str]]]:
    # newline="" semantics: StringIO keeps "\r\n" so quoted newlines come back exactly as written.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    rows: list[list[str]] = []
    start = 1
    try:
        for record in reader:
            line, start = start, reader.line_num + 1  # a quoted newline makes one record span several lines
            if not record or record == [""]:
                continue  # blank line
            if header is None:
                header = record
                continue
            if len(record) != len(header):
                raise DatasetError(
                    f"{filename}, line {line}: {len(record)} fields, but the header has {len(header)}. "
                    "Check for an unquoted separator or a missing value."
                )
            if len(rows) >= max_rows:
                raise _too_many_rows(filename, max_rows)
            rows.append(record)
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise DatasetError(
                f"{filename}, line {reader.line_num}: a cell is longer than {csv.field_size_limit():,} characters "
                "(or a quote is never closed)."
            ) from None
        raise DatasetError(f"{filename}, line {reader.line_num}: not valid CSV ({exc}).") from None
    if header is None:
        raise DatasetError(f"{filename} has no header row.")
    return header, rows


def _read_tsv(text: str, filename: str, max_rows: int) -> tuple[list[str], list[list[str]]]:
    return _read_csv(text, filename, max_rows, delimiter="\t")


def _read_json(text: str, filename: str, max_rows: int) -> tuple[list[str], list[list[str]]]:
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{filename}, line {exc.lineno}: not valid JSON ({exc.msg}).") from None
    except DatasetError as exc:  # from the hook
        raise DatasetError(f"{filename}: {exc}") from None
    if not isinstance(data, list):
        raise DatasetError(f'{filename}: expected a JSON list of objects, e.g. [{{"text": ...}}, ...].')
    if len(data) > max_rows:
        raise _too_many_rows(filename, max_rows)
    for i, item in enumerate(data, 1):
        if not isinstance(item, dict):
            raise DatasetError(f"{filename}: item {i} is {type(item).__name__}, not an object.")
    return _records_to_rows(data)


def _read_jsonl(text: str, filename: str, max_rows: int) -> tuple[list[str], list[list[str]]]:
    records = []
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line, object_pairs_hook=_no_duplicate_keys)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{filename}, line {line_no}: not valid JSON ({exc.msg}).") from None
        except DatasetError as exc:  # from the hook: say where
            raise DatasetError(f"{filename}, line {line_no}: {exc}") from None
        if not isinstance(item, dict):
            raise DatasetError(f"{filename}, line {line_no}: expected a JSON object, got {type(item).__name__}.")
        if len(records) >= max_rows:
            raise _too_many_rows(filename, max_rows)
        records.append(item)
    return _records_to_rows(records)


_PARSERS = {"csv": _read_csv, "tsv": _read_tsv, "json": _read_json, "jsonl": _read_jsonl}


def _read_parquet(path: Path, filename: str, max_rows: int, limit: int) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path).metadata  # the row count, without reading the data
    except Exception as exc:
        raise DatasetError(f"{filename} is not a readable Parquet file ({exc}).") from None
    if meta.num_rows > max_rows:
        raise _too_many_rows(filename, max_rows, found=meta.num_rows)
    names = list(pq.read_schema(path).names)
    check_columns(names, filename)
    # Read from the footer, before decompressing anything: a zip-bomb-like file stops here.
    expanded = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if expanded > limit:
        raise DatasetError(
            f"{filename} expands to {_human(expanded)} of data once decompressed; the limit is {_human(limit)} "
            f"({PARQUET_EXPANSION}x the upload limit, setting upload_max_bytes). Upload fewer or shorter rows."
        )
    # Dictionary encoding stores a repeated value once, so the footer undercounts what reading builds: count
    # the decoded bytes batch by batch and stop at the limit.
    import pyarrow as pa

    parquet, batches, decoded = pq.ParquetFile(path), [], 0
    for batch in parquet.iter_batches(batch_size=8):
        # A column written as an Arrow dictionary comes back as one: decode it, so its size is what it holds.
        columns = [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in batch.columns]
        batch = pa.RecordBatch.from_arrays(columns, names=batch.schema.names)
        decoded += batch.nbytes
        if decoded > limit:
            raise DatasetError(
                f"{filename} expands to more than {_human(limit)} of data once decoded ({PARQUET_EXPANSION}x the "
                "upload limit, setting upload_max_bytes). Upload fewer or shorter rows."
            )
        batches.append(batch)
    df = pa.Table.from_batches(batches).to_pandas() if batches else pd.DataFrame(columns=names)
    rows = [[cell_text(v) for v in row] for row in df.itertuples(index=False, name=None)]
    return _frame(names, rows, filename)


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    if len(pairs) > MAX_COLUMNS:  # checked here, before a huge object is built (and counted)
        raise DatasetError(f"an object has {len(pairs):,} keys; the limit is {MAX_COLUMNS:,} columns.")
    dupes = sorted(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
    if dupes:
        raise DatasetError(f"duplicate key(s) in one object: {', '.join(dupes)}.")
    return dict(pairs)


def _records_to_rows(records: list[dict]) -> tuple[list[str], list[list[str]]]:
    columns: dict[str, None] = {}  # union of keys, in order of first appearance
    for record in records:
        columns.update(dict.fromkeys(record))
    return list(columns), [[cell_text(r.get(c)) for c in columns] for r in records]


def cell_text(value: object) -> str:
    """One cell as text: missing -> "", numbers as written, nested values as JSON."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, str):
        return value
    if hasattr(value, "tolist"):  # numpy scalars and arrays (Parquet list columns)
        return cell_text(value.tolist())
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    if value is pd.NaT or value is pd.NA:
        return ""
    return str(value)


def _frame(columns: list[str], rows: list[list[str]], filename: str) -> pd.DataFrame:
    if not rows:
        raise DatasetError(f"{filename} has no rows (only a header, or nothing but blank lines).")
    check_columns(columns, filename)
    return pd.DataFrame(rows, columns=columns, dtype=object)


def check_columns(columns: list[str], filename: str) -> None:
    if not columns:
        raise DatasetError(f"{filename} has no columns.")
    if len(columns) > MAX_COLUMNS:
        raise DatasetError(f"{filename} has {len(columns):,} columns; the limit is {MAX_COLUMNS:,}.")
    for i, name in enumerate(columns, 1):
        if not str(name).strip():
            raise DatasetError(f"{filename}: column {i} has no name; give every column a header.")
    dupes = sorted(c for c, n in Counter(columns).items() if n > 1)  # Counter: columns.count is quadratic
    if dupes:
        raise DatasetError(f"{filename}: duplicate column name(s) {', '.join(map(repr, dupes))}; rename them.")


def _too_many_rows(filename: str, max_rows: int, found: int | None = None) -> DatasetError:
    has = f"{found:,} rows" if found is not None else f"more than {max_rows:,} rows"
    return DatasetError(f"{filename} has {has}; the limit is {max_rows:,}. Upload a sample of the rows.")


def _human(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} bytes"  # unreachable
