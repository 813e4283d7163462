"""Datasets: the tables that evaluation, training and the feedback loop read.

``files`` reads uploads (CSV, TSV, JSON, JSONL, Parquet) into tables of strings; ``mapping`` says which column
fills which template variable; ``store`` keeps named datasets (a JSONL file plus a row in SQLite);
``samples`` draws rows and holds the built-in sample datasets. A plain service of the features above it: it
must not know evaluation, training, the loop or the UI (and imports no gradio).
"""

from llmplay.datasets.errors import DatasetError
from llmplay.datasets.files import FORMATS, MAX_COLUMNS, MAX_ROWS, Preview, Table, preview, read_table
from llmplay.datasets.mapping import ColumnMapping, suggest_mapping, validate_mapping
from llmplay.datasets.samples import builtin_datasets, install_builtins, load_builtin, sample
from llmplay.datasets.store import (
    Dataset,
    DatasetInfo,
    SaveResult,
    dataset_info,
    delete_dataset,
    list_datasets,
    load_dataset,
    remove_orphans,
    save_dataset,
)

__all__ = [
    "FORMATS",
    "MAX_COLUMNS",
    "MAX_ROWS",
    "ColumnMapping",
    "Dataset",
    "DatasetError",
    "DatasetInfo",
    "Preview",
    "SaveResult",
    "Table",
    "builtin_datasets",
    "dataset_info",
    "delete_dataset",
    "install_builtins",
    "list_datasets",
    "load_builtin",
    "load_dataset",
    "preview",
    "read_table",
    "remove_orphans",
    "sample",
    "save_dataset",
    "suggest_mapping",
    "validate_mapping",
]
