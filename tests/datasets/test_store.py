"""Saved datasets: save, load, list and delete; one dataset per content; a crash or a kill leaves nothing behind."""

from __future__ import annotations

import os
import time

import pandas as pd
import pytest

from llmplay import datasets as ds
from llmplay.datasets import ColumnMapping, DatasetError
from llmplay.datasets import store as dataset_store
from llmplay.datasets.store import ORPHAN_MIN_AGE_S, content_hash, datasets_dir
from tests.datasets.tables import ROWS, as_file, stored


def test_save_load_list_delete(tmp_path, settings):
    table = ds.read_table(as_file("csv", tmp_path), settings)
    mapping = ColumnMapping({"text": "text"}, reference="label")
    saved = ds.save_dataset(settings, "news", table.df, mapping, source=table.filename)
    assert saved.created
    info = saved.info
    assert (info.rows, info.columns, info.source) == (3, ["text", "label"], "data.csv")
    assert info.path == datasets_dir(settings) / f"news-{info.content_hash[:8]}.jsonl"
    assert info.content_hash == content_hash(info.path.read_text(encoding="utf-8"))

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
    again = ds.read_table(as_file("parquet", tmp_path), settings).df
    second = ds.save_dataset(settings, "news", again, ColumnMapping({"t": "text"}))
    assert not second.created
    assert second.info.content_hash == first.info.content_hash
    assert second.info.mapping == ColumnMapping({"t": "text"})
    assert stored(settings) == ([first.info.path.name], [("news", first.info.path.name)])
    with pytest.raises(DatasetError, match="already exists with other content"):
        ds.save_dataset(settings, "news", pd.DataFrame(ROWS[:1]))


def test_bad_name_is_refused(settings):
    with pytest.raises(DatasetError, match="not a dataset name"):
        ds.save_dataset(settings, "../escape", pd.DataFrame(ROWS))
    assert stored(settings) == ([], [])


def test_failure_between_file_write_and_insert_leaves_nothing(settings, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(dataset_store, "_insert", crash)
    with pytest.raises(RuntimeError):
        ds.save_dataset(settings, "news", pd.DataFrame(ROWS))
    assert stored(settings) == ([], [])


def test_a_killed_save_leaves_an_orphan_that_is_removed_later(settings):
    saved = ds.save_dataset(settings, "kept", pd.DataFrame(ROWS)).info
    orphan = datasets_dir(settings) / "news-deadbeef.jsonl"  # as if killed before the insert
    orphan.write_text("{}\n")
    assert ds.remove_orphans(settings) == []  # young: could be a save in progress
    old = time.time() - ORPHAN_MIN_AGE_S - 1
    os.utime(orphan, (old, old))
    assert ds.remove_orphans(settings) == [orphan]
    assert stored(settings) == ([saved.path.name], [("kept", saved.path.name)])


def test_a_changed_file_is_refused_on_load(settings):
    info = ds.save_dataset(settings, "news", pd.DataFrame(ROWS)).info
    info.path.write_text('{"text":"edited","label":""}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="changed outside llmplay"):
        ds.load_dataset(settings, "news")
