"""The Train tab reads training files only from uploads, each by its declared format (issue 20, defect 1).

A viewer once previewed a masked-LM job whose data file was the SQLite database and read its pages (the
preview read any non-table file as text). The database, /etc/passwd and symlinks to them are refused by the
preview and by starting a job, with a message; an upload that is really a database is refused by its content."""

from __future__ import annotations

import html
import os
import shutil

import pytest
import yaml

from llmplay.store import connect
from llmplay.training import records
from tests.conftest import CHAT_MODEL
from tests.ui.test_train_tab import TrainApp, form_args

ENCODER = "all-minilm-l6-v2"
SECRET = "secret-audit-row-from-the-database"


def _job(path, task: str) -> str:
    base = {"mlm": ENCODER, "sft": CHAT_MODEL, "cpt": CHAT_MODEL}[task]
    config = {"name": f"read-{task}", "base_model": base, "task": task, "max_steps": 1}
    if task == "mlm":
        config["method"] = "full"
    config["data"] = {"source": "file", "file": str(path)}
    return yaml.safe_dump(config, sort_keys=False)


@pytest.fixture()
def app(settings, engine):
    train_app = TrainApp(settings, engine.models)
    with connect(settings.db_path) as db:  # a row only the database holds: it must never reach a page
        db["feedback_audit"].insert({"at": "now", "action": SECRET, "entity": "test"})
    yield train_app
    train_app.close()


def _refused(app, text: str) -> tuple[str, str]:
    preview = html.unescape(app.client.predict(True, text, *form_args(), api_name="/train_preview"))
    message, _, _ = app.client.predict(True, text, *form_args(), api_name="/train_start")
    return preview, html.unescape(message)


def _uploads(settings):
    folder = settings.data_dir / "training" / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize("task", ["mlm", "sft", "cpt"])
def test_the_database_passwd_and_symlinks_to_them_are_refused_by_preview_and_start(app, settings, task):
    uploads = _uploads(settings)
    (uploads / f"db-{task}.txt").symlink_to(settings.db_path.resolve())
    (uploads / f"passwd-{task}.txt").symlink_to("/etc/passwd")
    for path in (settings.db_path, "/etc/passwd", uploads / f"db-{task}.txt", uploads / f"passwd-{task}.txt"):
        preview, started = _refused(app, _job(path, task))
        for shown in (preview, started):
            assert "is not an upload" in shown, (path, shown)
            assert SECRET not in shown and "root:" not in shown and "SQLite format" not in shown
    assert records.list_jobs(settings.db_path) == []


@pytest.mark.parametrize("task", ["mlm", "sft"])
def test_an_upload_that_is_a_database_is_refused_by_its_content(app, settings, task):
    copy = _uploads(settings) / f"notes-{task}.txt"
    shutil.copyfile(settings.db_path, copy)  # a .txt name does not make it text
    os.utime(copy)
    preview, started = _refused(app, _job(copy, task))
    for shown in (preview, started):
        assert "SQLite database" in shown, shown
        assert SECRET not in shown
    assert records.list_jobs(settings.db_path) == []


def test_a_preview_keeps_no_copy_of_an_upload_and_starting_a_job_keeps_one(app, settings, tmp_path):
    from gradio_client import handle_file

    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(f'{{"prompt": "{i}+{i}=", "completion": "{2 * i}"}}\n' for i in range(8)))
    form = form_args(source="file", file=handle_file(rows), max_steps=1)
    preview = app.client.predict(False, "", *form, api_name="/train_preview")
    assert "would be truncated" in preview, preview
    kept = settings.data_dir / "training" / "uploads"
    assert not kept.exists() or list(kept.iterdir()) == []  # a preview leaves nothing behind for good
    message, _, _ = app.client.predict(False, "", *form, api_name="/train_start")
    assert "✅" in message, message
    (copy,) = kept.iterdir()
    assert copy.read_bytes() == rows.read_bytes()
    assert records.list_jobs(settings.db_path)[0].config["data"]["file"] == str(copy)
