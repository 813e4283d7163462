"""Fixtures of the evaluation tests."""

from __future__ import annotations

import pytest

from tests.evaluation.examples import example_runner


@pytest.fixture()
def run_example(tmp_path, model_cache_dir, monkeypatch, capsys):
    """Run a shipped evals/*.yaml example through `llmplay eval` (tests/evaluation/examples.py)."""
    return example_runner(tmp_path, model_cache_dir, monkeypatch, capsys)
