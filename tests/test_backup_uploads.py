"""A backup leaves out the training uploads no job uses (swept by the job runner, like tmp/), and keeps the
ones a job on record refers to (issue 20, defect 7)."""

from __future__ import annotations

import os
import time

from llmplay import backup
from llmplay.settings import Settings
from llmplay.store import connect
from llmplay.training import data_files, records


def test_a_backup_keeps_the_uploads_jobs_use_and_leaves_out_the_rest(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    with connect(settings.db_path) as db:
        db["feedback_audit"].insert({"at": "now", "action": "x", "entity": "test"})
    uploads = data_files.uploads_dir(settings)
    uploads.mkdir(parents=True)
    used, unused = uploads / "aaaa-used.jsonl", uploads / "bbbb-unused.jsonl"
    for path in (used, unused):
        path.write_bytes(b'{"text": "x"}\n' * 1000)
        old = time.time() - 2 * data_files.UNUSED_MIN_AGE_S
        os.utime(path, (old, old))
    records.create_job(settings.db_path, {"name": "j", "data": {"source": "file", "file": str(used)}})
    made = backup.backup(settings, tmp_path / "bucket")
    copied = {entry["path"] for entry in made.manifest["files"]}
    assert "training/uploads/aaaa-used.jsonl" in copied
    assert "training/uploads/bbbb-unused.jsonl" not in copied
    assert {"path": "training/uploads/bbbb-unused.jsonl", "reason": "a training upload no job uses (swept)"} in (
        made.manifest["skipped"]
    )
