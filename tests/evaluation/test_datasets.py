"""Datasets: reading uploads in every format, bad uploads, saving/loading named datasets, sampling, built-ins."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time

import pandas as pd
import pytest

from llmplay.evaluation import datasets as ds
from llmplay.evaluation.datasets import ColumnMapping, DatasetError
from llmplay.settings import Settings

ROWS = [
    {"text": "Café opens, €5 coffee", "label": "positive"},
    {"text": "Profit fell", "label": ""},
    {"text": "Flat quarter", "label": "neutral"},
]


@pytest.fixture()
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def _write(tmp_path, name: str, content: bytes | str) -> os.PathLike:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def _stored(settings: Settings) -> tuple[list[str], list[dict]]:
    """What is on disk and in the database: both must be unchanged by a failed upload."""
    folder = ds.datasets_dir(settings)
    files = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if not settings.db_path.exists():
        return files, []
    con = sqlite3.connect(settings.db_path)
    try:
        has_table = con.execute("SELECT 1 FROM sqlite_master WHERE name='datasets'").fetchone()
        rows = con.execute("SELECT name, file FROM datasets").fetchall() if has_table else []
    finally:
        con.close()
    return files, rows


# ---- formats --------------------------------------------------------------------------------------------


def _as_file(fmt: str, tmp_path) -> os.PathLike:
    df = pd.DataFrame(ROWS)
    path = tmp_path / f"data.{fmt}"
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "tsv":
        df.to_csv(path, index=False, sep="\t")
    elif fmt == "json":
        path.write_text(json.dumps(ROWS, ensure_ascii=False), encoding="utf-8")
    elif fmt == "jsonl":
        path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS) + "\n", encoding="utf-8")
    elif fmt == "parquet":
        df.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl", "parquet"])
def test_each_format_round_trips(fmt, tmp_path, settings):
    table = ds.read_table(_as_file(fmt, tmp_path), settings)
    assert table.format == fmt
    assert table.columns == ["text", "label"]
    assert table.df.to_dict(orient="records") == ROWS  # the empty label stays "", not "nan"
    assert table.encoding == (None if fmt == "parquet" else "utf-8")


def test_utf8_bom_and_latin1_are_decoded_and_reported(tmp_path, settings):
    bom = ds.read_table(
        _write(tmp_path, "bom.csv", b"\xef\xbb\xbfname,price\r\nCaf\xc3\xa9,\xe2\x82\xac5\r\n"), settings
    )
    assert bom.encoding == "utf-8-sig"
    assert bom.columns == ["name", "price"]  # no BOM glued to the first header
    assert bom.df.iloc[0].tolist() == ["Café", "€5"]
    latin = ds.read_table(_write(tmp_path, "latin.csv", "name,city\nCafé,Zürich\n".encode("latin-1")), settings)
    assert latin.encoding == "latin-1"
    assert latin.df.iloc[0].tolist() == ["Café", "Zürich"]


def test_quoted_newlines_and_empty_cells(tmp_path, settings):
    text = 'a,b,c\n"line one\nline two",,x\n"say ""hi""",2,\n'
    table = ds.read_table(_write(tmp_path, "q.csv", text), settings)
    assert table.df.to_dict(orient="records") == [
        {"a": "line one\nline two", "b": "", "c": "x"},
        {"a": 'say "hi"', "b": "2", "c": ""},
    ]


def test_json_values_become_text(tmp_path, settings):
    rows = [{"q": "2+2", "n": 4, "ok": True, "x": None, "tags": ["a"]}, {"q": "1.5*2", "n": 3.0}]
    table = ds.read_table(_write(tmp_path, "v.json", json.dumps(rows)), settings)
    assert table.df.to_dict(orient="records") == [
        {"q": "2+2", "n": "4", "ok": "true", "x": "", "tags": '["a"]'},
        {"q": "1.5*2", "n": "3.0", "ok": "", "x": "", "tags": ""},
    ]


def test_preview_shows_first_rows_and_detection(tmp_path, settings):
    table = ds.read_table(_as_file("csv", tmp_path), settings)
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
    before = _stored(settings)
    with pytest.raises(DatasetError) as err:
        table = ds.read_table(_write(tmp_path, name, content), settings)
        ds.save_dataset(settings, "new", table.df)
    assert message in str(err.value)
    assert name in str(err.value)
    assert _stored(settings) == before


def test_size_limit_is_checked_before_reading(tmp_path, settings):
    small = settings.with_(upload_max_bytes=1000)
    path = _write(tmp_path, "big.csv", "a\n" + "x\n" * 5000)  # 10x the limit
    with pytest.raises(DatasetError, match=r"big.csv is 9.8 KB; the upload limit is 1000 bytes"):
        ds.read_table(path, small)
    assert _stored(small) == ([], [])


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json", "parquet"])
def test_row_limit(fmt, tmp_path, settings):
    path = _as_file(fmt, tmp_path)
    with pytest.raises(DatasetError, match="the limit is 2"):
        ds.read_table(path, settings, max_rows=2)
    assert len(ds.read_table(path, settings, max_rows=3).df) == 3


def test_missing_mapped_column_lists_available_columns(settings):
    mapping = ColumnMapping({"text": "sentence"}, reference="gold")
    with pytest.raises(DatasetError) as err:
        ds.save_dataset(settings, "news", pd.DataFrame(ROWS), mapping)
    msg = str(err.value)
    assert "variable 'text' -> 'sentence'" in msg and "the reference -> 'gold'" in msg
    assert "Available columns: text, label" in msg
    assert _stored(settings) == ([], [])


def test_suggest_mapping_matches_names():
    m = ds.suggest_mapping(["Text", "context"], ["text", "label"])
    assert m == ColumnMapping({"Text": "text"}, reference="label")


# ---- named datasets -------------------------------------------------------------------------------------


def test_save_load_list_delete(tmp_path, settings):
    table = ds.read_table(_as_file("csv", tmp_path), settings)
    mapping = ColumnMapping({"text": "text"}, reference="label")
    saved = ds.save_dataset(settings, "news", table.df, mapping, source=table.filename)
    assert saved.created
    info = saved.info
    assert (info.rows, info.columns, info.source) == (3, ["text", "label"], "data.csv")
    assert info.path == ds.datasets_dir(settings) / f"news-{info.content_hash[:8]}.jsonl"
    assert info.content_hash == ds.content_hash(info.path.read_text(encoding="utf-8"))

    loaded = ds.load_dataset(settings, "news")
    assert loaded.df.to_dict(orient="records") == ROWS
    assert loaded.mapping == mapping
    assert [d.name for d in ds.list_datasets(settings)] == ["news"]

    ds.delete_dataset(settings, "news")
    assert ds.list_datasets(settings) == []
    assert not info.path.exists()
    with pytest.raises(DatasetError, match="No dataset named 'news'"):
        ds.load_dataset(settings, "news")


def test_same_content_is_one_dataset(tmp_path, settings):
    first = ds.save_dataset(settings, "news", pd.DataFrame(ROWS))
    # Same content from another format, with a new mapping: same hash, no new row, mapping updated.
    again = ds.read_table(_as_file("parquet", tmp_path), settings).df
    second = ds.save_dataset(settings, "news", again, ColumnMapping({"t": "text"}))
    assert not second.created
    assert second.info.content_hash == first.info.content_hash
    assert second.info.mapping == ColumnMapping({"t": "text"})
    assert _stored(settings) == ([first.info.path.name], [("news", first.info.path.name)])
    with pytest.raises(DatasetError, match="already exists with other content"):
        ds.save_dataset(settings, "news", pd.DataFrame(ROWS[:1]))


def test_bad_name_is_refused(settings):
    with pytest.raises(DatasetError, match="not a dataset name"):
        ds.save_dataset(settings, "../escape", pd.DataFrame(ROWS))
    assert _stored(settings) == ([], [])


def test_failure_between_file_write_and_insert_leaves_nothing(settings, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ds, "_insert", crash)
    with pytest.raises(RuntimeError):
        ds.save_dataset(settings, "news", pd.DataFrame(ROWS))
    assert _stored(settings) == ([], [])


def test_a_killed_save_leaves_an_orphan_that_is_removed_later(settings):
    saved = ds.save_dataset(settings, "kept", pd.DataFrame(ROWS)).info
    orphan = ds.datasets_dir(settings) / "news-deadbeef.jsonl"  # as if killed before the insert
    orphan.write_text("{}\n")
    assert ds.remove_orphans(settings) == []  # young: could be a save in progress
    old = time.time() - ds.ORPHAN_MIN_AGE_S - 1
    os.utime(orphan, (old, old))
    assert ds.remove_orphans(settings) == [orphan]
    assert _stored(settings) == ([saved.path.name], [("kept", saved.path.name)])


def test_a_changed_file_is_refused_on_load(settings):
    info = ds.save_dataset(settings, "news", pd.DataFrame(ROWS)).info
    info.path.write_text('{"text":"edited","label":""}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="changed outside llmplay"):
        ds.load_dataset(settings, "news")


# ---- sampling and built-ins -----------------------------------------------------------------------------


def test_sampling_is_deterministic_per_seed():
    df = pd.DataFrame({"i": [str(i) for i in range(100)]})
    a, b, c = ds.sample(df, 10, seed=1), ds.sample(df, 10, seed=1), ds.sample(df, 10, seed=2)
    assert a.equals(b)
    assert list(a.index) != list(c.index)
    assert len(a) == 10 and list(a.index) == sorted(a.index)  # original order and row numbers kept
    assert len(ds.sample(df, 500, seed=1)) == 100
    with pytest.raises(DatasetError):
        ds.sample(df, 0, seed=1)


@pytest.mark.parametrize(
    ("name", "columns", "rows"),
    [
        ("financial-sentiment", ["text", "label"], 20),
        ("customer-intents", ["message", "intent"], 15),
        ("arithmetic", ["question", "answer"], 10),
    ],
)
def test_builtin_samples_load(name, columns, rows):
    df, mapping, description = ds.load_builtin(name)
    assert list(df.columns) == columns and len(df) == rows and description
    assert mapping.reference == columns[1]
    ds.validate_mapping(mapping, columns)
    assert (df != "").all().all()


def test_builtin_labels_and_answers_are_well_formed():
    labels = set(ds.load_builtin("financial-sentiment")[0]["label"])
    assert labels == {"positive", "negative", "neutral"}
    assert all(a.isdigit() for a in ds.load_builtin("arithmetic")[0]["answer"])


def test_install_builtins_is_idempotent(settings):
    first = ds.install_builtins(settings)
    assert [r.info.name for r in first] == ds.builtin_datasets()
    assert ds.install_builtins(settings) == []
    assert sorted(d.name for d in ds.list_datasets(settings)) == sorted(ds.builtin_datasets())
    assert len(ds.load_dataset(settings, "arithmetic").df) == 10
