"""A real SQLite file per test, opened with the app's own migrations."""

from __future__ import annotations

import pytest

from llmplay.store import open_db


@pytest.fixture()
def db_path(tmp_path):
    return tmp_path / "llmplay.db"


@pytest.fixture()
def db(db_path):
    database = open_db(db_path)
    yield database
    database.close()
