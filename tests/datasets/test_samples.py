"""Sampling rows is deterministic per seed; the built-in samples load, are well formed and install once."""

from __future__ import annotations

import pandas as pd
import pytest

from llmplay import datasets as ds
from llmplay.datasets import DatasetError


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
        ("invoices", ["text", "fields"], 20),
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
