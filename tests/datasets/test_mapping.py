"""Column mapping: a missing mapped column is named with the columns there are; names map ignoring case."""

from __future__ import annotations

import pandas as pd
import pytest

from llmplay import datasets as ds
from llmplay.datasets import ColumnMapping, DatasetError
from tests.datasets.tables import ROWS, stored


def test_missing_mapped_column_lists_available_columns(settings):
    mapping = ColumnMapping({"text": "sentence"}, reference="gold")
    with pytest.raises(DatasetError) as err:
        ds.save_dataset(settings, "news", pd.DataFrame(ROWS), mapping)
    msg = str(err.value)
    assert "variable 'text' -> 'sentence'" in msg and "the reference -> 'gold'" in msg
    assert "Available columns: text, label" in msg
    assert stored(settings) == ([], [])


def test_suggest_mapping_matches_names():
    m = ds.suggest_mapping(["Text", "context"], ["text", "label"])
    assert m == ColumnMapping({"Text": "text"}, reference="label")
