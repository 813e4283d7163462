"""Temporary files are the app's to clean: a failed export leaves no folder, an upload is deleted once its
content is stored (a file the caller owns never is), and start-up sweeps what is more than a day old."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from llmplay.datasets import list_datasets
from llmplay.engine import Engine
from llmplay.evaluation.runner import EvalRunner
from llmplay.settings import Settings
from llmplay.templates.library import TemplateLibrary
from llmplay.ui.tabs.evaluate.tab import EvaluateTab
from llmplay.ui.tabs.templates import TemplatesTab
from tests.conftest import ROOT

CSV = "text,label\nProfit rose,positive\nSales fell,negative\n"


@pytest.fixture()
def app_parts(tmp_path, monkeypatch, model_cache_dir):
    """Tab handlers on a fresh data dir (no model is loaded), with the system temp dir and Gradio's upload
    folder moved into tmp_path so nothing outside it can be touched or counted by mistake."""
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    settings = Settings(data_dir=tmp_path / "data", cache_dir=model_cache_dir)
    engine = Engine(settings)
    prompts = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", prompts, ignore=shutil.ignore_patterns("README.md"))
    library = TemplateLibrary(prompts, settings.db_path)
    return (
        settings,
        system_tmp,
        TemplatesTab(engine, library),
        EvaluateTab(engine, library, EvalRunner(engine, library)),
    )


def _upload(tmp_path: Path, name: str, text: str) -> Path:
    """A file where Gradio puts an upload: <GRADIO_TEMP_DIR>/<hash>/<name>."""
    path = tmp_path / "gradio" / "0123abcd" / name
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_failed_export_leaves_no_folder_and_a_good_one_lands_in_the_data_dir(app_parts):
    settings, system_tmp, templates, _ = app_parts
    assert templates.export_template("no-such-template") is None
    exports = settings.data_dir / "tmp" / "exports"
    assert list(system_tmp.iterdir()) == [] and (not exports.exists() or list(exports.iterdir()) == [])

    path = Path(templates.export_template("financial-sentiment"))
    assert path.read_text(encoding="utf-8") == (ROOT / "prompts" / "financial-sentiment.yaml").read_text("utf-8")
    assert path.parent.parent == exports and list(system_tmp.iterdir()) == []


def test_an_upload_is_deleted_once_stored_and_a_callers_file_never(app_parts, tmp_path):
    settings, _, templates, evaluate = app_parts
    upload = _upload(tmp_path, "news.csv", CSV)
    message, *_ = evaluate.save_dataset(str(upload), "news-upload", "", "label")
    assert message.startswith("✅"), message
    assert "news-upload" in {d.name for d in list_datasets(settings)}
    assert not upload.exists() and not upload.parent.exists()
    # Saving again from the page's stale reference says what to do instead of failing obscurely.
    message, *_ = evaluate.save_dataset(str(upload), "news-upload", "", "label")
    assert "no longer on the server: upload it again" in message, message

    template = _upload(tmp_path, "imported.yaml", "name: imported\ntask: chat\nbody: Hello\n")
    status, _ = templates.import_template(str(template))
    assert status.startswith("✓ Imported") and not template.exists(), status

    mine = tmp_path / "mine.csv"  # a path given by a script, outside the upload folder
    mine.write_text(CSV, encoding="utf-8")
    message, *_ = evaluate.save_dataset(str(mine), "news-mine", "", "label")
    assert message.startswith("✅") and mine.exists(), message


def test_start_up_takes_gradios_temp_dir_and_sweeps_what_is_a_day_old(tmp_path, monkeypatch):
    from llmplay.tempfiles import claim_upload_dir

    monkeypatch.setenv("GRADIO_TEMP_DIR", "restored-after-the-test")
    monkeypatch.delenv("GRADIO_TEMP_DIR")
    settings = Settings(data_dir=tmp_path / "data")
    root = settings.data_dir / "tmp"
    two_days_ago = time.time() - 2 * 86400
    stale = [root / "gradio" / "aa11" / "old.csv", root / "exports" / "eval-run-1-x" / "run-1.csv"]
    fresh = root / "gradio" / "bb22" / "new.csv"
    for path in [*stale, fresh]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(CSV, encoding="utf-8")
    for path in stale:
        os.utime(path, (two_days_ago, two_days_ago))

    folder = claim_upload_dir(settings)
    assert folder == (root / "gradio").resolve() and os.environ["GRADIO_TEMP_DIR"] == str(folder)
    assert fresh.exists() and not any(p.exists() or p.parent.exists() for p in stale)
    assert folder.is_dir() and root.is_dir()
