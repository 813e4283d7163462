"""Each dataset test gets its own data dir (no model cache: nothing here loads a model)."""

from __future__ import annotations

import pytest

from llmplay.settings import Settings


@pytest.fixture()
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data")
