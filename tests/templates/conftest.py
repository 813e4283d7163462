"""Fixtures for template tests: a copy of the shipped library and a database, both in a temp dir."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from llmplay.templates.library import TemplateLibrary
from tests.conftest import ROOT

PROMPTS = ROOT / "prompts"


@pytest.fixture()
def library(tmp_path) -> TemplateLibrary:
    folder = tmp_path / "prompts"
    shutil.copytree(PROMPTS, folder, ignore=shutil.ignore_patterns("README.md"))
    return TemplateLibrary(folder, tmp_path / "data" / "llmplay.db")


@pytest.fixture()
def empty_library(tmp_path) -> TemplateLibrary:
    return TemplateLibrary(tmp_path / "prompts", tmp_path / "data" / "llmplay.db")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
