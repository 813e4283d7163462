"""Reading uploads: every format round-trips, bad uploads fail with a clear message and store nothing."""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest

from llmplay import datasets as ds
from llmplay.datasets import DatasetError
from tests.datasets.tables import ROWS, as_file, stored, write_file


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl", "parquet"])
def test_each_format_round_trips(fmt, tmp_path, settings):
    table = ds.read_table(as_file(fmt, tmp_path), settings)
    assert table.format == fmt
    assert table.columns == ["text", "label"]
    assert table.df.to_dict(orient="records") == ROWS  # the empty label stays "", not "nan"
    assert table.encoding == (None if fmt == "parquet" else "utf-8")


def test_utf8_bom_and_latin1_are_decoded_and_reported(tmp_path, settings):
    bom = ds.read_table(
        write_file(tmp_path, "bom.csv", b"\xef\xbb\xbfname,price\r\nCaf\xc3\xa9,\xe2\x82\xac5\r\n"), settings
    )
    assert bom.encoding == "utf-8-sig"
    assert bom.columns == ["name", "price"]  # no BOM glued to the first header
    assert bom.df.iloc[0].tolist() == ["Café", "€5"]
    latin = ds.read_table(write_file(tmp_path, "latin.csv", "name,city\nCafé,Zürich\n".encode("latin-1")), settings)
    assert latin.encoding == "latin-1"
    assert latin.df.iloc[0].tolist() == ["Café", "Zürich"]


def test_quoted_newlines_and_empty_cells(tmp_path, settings):
    text = 'a,b,c\n"line one\nline two",,x\n"say ""hi""",2,\n'
    table = ds.read_table(write_file(tmp_path, "q.csv", text), settings)
    assert table.df.to_dict(orient="records") == [
        {"a": "line one\nline two", "b": "", "c": "x"},
        {"a": 'say "hi"', "b": "2", "c": ""},
    ]


def test_json_values_become_text(tmp_path, settings):
    rows = [{"q": "2+2", "n": 4, "ok": True, "x": None, "tags": ["a"]}, {"q": "1.5*2", "n": 3.0}]
    table = ds.read_table(write_file(tmp_path, "v.json", json.dumps(rows)), settings)
    assert table.df.to_dict(orient="records") == [
        {"q": "2+2", "n": "4", "ok": "true", "x": "", "tags": '["a"]'},
        {"q": "1.5*2", "n": "3.0", "ok": "", "x": "", "tags": ""},
    ]


def test_preview_shows_first_rows_and_detection(tmp_path, settings):
    table = ds.read_table(as_file("csv", tmp_path), settings)
    p = ds.preview(table, n=2)
    assert (p.columns, p.total_rows, p.format, p.encoding) == (["text", "label"], 3, "csv", "utf-8")
    assert p.rows == ROWS[:2]


# ---- bad uploads ----------------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "is empty"),
        ("image.csv", PNG, "PNG image"),
        ("random.csv", random.Random(0).randbytes(4096), "binary"),
        ("utf16.csv", "text,label\nCafé,x\n".encode("utf-16"), "UTF-16"),
        ("ragged.csv", "a,b\n1,2\n3,4,5\n6,7\n", "line 3: 3 fields, but the header has 2"),
        ("short.csv", 'a,b\n"multi\nline",2\n3\n', "line 4: 1 fields"),
        ("header.csv", "a,b\n", "no rows"),
        ("dupes.csv", "a,a\n1,2\n", "duplicate column name(s) 'a'"),
        ("unnamed.csv", "a,\n1,2\n", "column 2 has no name"),
        ("data.xlsx", b"a,b\n1,2\n", "unknown file type '.xlsx'"),
        ("list.json", '{"a": 1}', "expected a JSON list of objects"),
        ("broken.jsonl", '{"a": 1}\n{"a": \n', "line 2: not valid JSON"),
        ("empty.json", "[]", "no rows"),
        ("fake.parquet", b"a,b\n1,2\n", "not a readable Parquet file"),
    ],
)
def test_bad_upload_has_a_clear_message_and_stores_nothing(name, content, message, tmp_path, settings):
    ds.save_dataset(settings, "existing", pd.DataFrame(ROWS))
    before = stored(settings)
    with pytest.raises(DatasetError) as err:
        table = ds.read_table(write_file(tmp_path, name, content), settings)
        ds.save_dataset(settings, "new", table.df)
    assert message in str(err.value)
    assert name in str(err.value)
    assert stored(settings) == before


def test_size_limit_is_checked_before_reading(tmp_path, settings):
    small = settings.with_(upload_max_bytes=1000)
    path = write_file(tmp_path, "big.csv", "a\n" + "x\n" * 5000)  # 10x the limit
    with pytest.raises(DatasetError, match=r"big.csv is 9.8 KB; the upload limit is 1000 bytes"):
        ds.read_table(path, small)
    assert stored(small) == ([], [])


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json", "parquet"])
def test_row_limit(fmt, tmp_path, settings):
    path = as_file(fmt, tmp_path)
    with pytest.raises(DatasetError, match="the limit is 2"):
        ds.read_table(path, settings, max_rows=2)
    assert len(ds.read_table(path, settings, max_rows=3).df) == 3
