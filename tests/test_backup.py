"""Backups and restores (llmplay/backup.py, `llmplay backup` / `llmplay restore`) on real SQLite files: a backup
taken while another thread writes, a restore that gives back the same rows and files, and the refusals."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from llmplay import backup, backup_files, backup_schedule, exitcodes
from llmplay.cli import main
from llmplay.settings import Settings
from llmplay.store import connect, immediate

DATA_FILES = {
    "datasets/fpb-1234abcd.jsonl": b'{"text": "Profits rose."}\n' * 50,
    "models/versions/fpb-lora/job-1/adapter_model.safetensors": bytes(range(256)) * 64,
    "training/jobs/1/job.log": b"step 1 loss 2.3\n",
    "metrics/my_metric.py": b"def score(a, b):\n    return a == b\n",
    "models.yaml": b"- name: x\n",
}
SKIPPED_FILES = {
    "tmp/gradio/upload.csv": "tmp/",
    "cache/models/smollm2/model.safetensors": "cache/",
    "exports/run-1/results.csv": "exports/",
    "models/merged/fpb/model.safetensors": "models/merged/",
    "models/versions/fpb-lora/.job-2.partial/adapter.bin": "models/versions/fpb-lora/.job-2.partial/",
    "datasets/.new.jsonl.abc123.tmp": "datasets/.new.jsonl.abc123.tmp",
}


def _add_version(db, number: int, content: str = "x") -> None:
    """One template version and its audit row in one transaction: a consistent copy has both or neither."""
    with immediate(db):
        db["template_versions"].insert(
            {"template": "t", "number": number, "content": content, "content_hash": "h", "created_at": "now"}
        )
        db["feedback_audit"].insert({"at": "now", "action": "version", "entity": "template", "entity_id": number})


@pytest.fixture()
def data(tmp_path) -> Settings:
    """A data dir with a database (some rows), files to back up and files a backup leaves out."""
    settings = Settings(data_dir=tmp_path / "data")
    with connect(settings.db_path) as db:
        for n in range(1, 21):
            _add_version(db, n)
    for rel, content in {**DATA_FILES, **dict.fromkeys(SKIPPED_FILES, b"skip me")}.items():
        path = settings.data_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return settings


def _counts(db_path: Path) -> dict[str, int]:
    con = sqlite3.connect(db_path)
    try:
        names = [r[0] for r in con.execute("select name from sqlite_master where type = 'table'")]
        return {name: con.execute(f'select count(*) from "{name}"').fetchone()[0] for name in names}
    finally:
        con.close()


def _hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith("llmplay.db")
    }


def _journal_mode(db_path: Path) -> str:
    con = sqlite3.connect(db_path)
    try:
        return con.execute("pragma journal_mode").fetchone()[0]
    finally:
        con.close()


def test_backup_while_another_thread_writes_is_a_consistent_prefix(data, tmp_path):
    with connect(data.db_path) as db:  # enough pages that the copy takes a while
        for n in range(21, 1021):
            _add_version(db, n, "y" * 2000)
    stop, written = threading.Event(), []

    def writer() -> None:
        with connect(data.db_path) as db:
            n = 1021
            while not stop.is_set():
                _add_version(db, n)
                written.append(n)
                n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 20:  # the writer is going before the backup starts
            time.sleep(0.01)
        made = backup.backup(data, tmp_path / "backups")
        during = len(written)
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join()
    assert len(written) > during  # it kept writing after the backup, so it was never blocked for good
    db_copy = made.path / backup.DB_FILE
    con = sqlite3.connect(db_copy)
    assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
    numbers = [r[0] for r in con.execute("select number from template_versions order by number")]
    audit_sql = "select entity_id from feedback_audit where action = 'version' order by entity_id"
    audits = [r[0] for r in con.execute(audit_sql)]
    con.close()
    # A prefix of the writes, each transaction whole: 1..n with no gap, and every version's audit row.
    assert numbers == list(range(1, len(numbers) + 1)) and audits == numbers
    assert 1020 + 20 <= len(numbers) <= 1020 + len(written)
    assert made.manifest["database"]["integrity_check"] == "ok"
    assert made.manifest["database"]["tables"]["template_versions"] == len(numbers)
    assert _journal_mode(data.db_path) == "wal"  # the live database is untouched
    assert _journal_mode(db_copy) == "delete"  # the copy is one self-contained file


def test_backup_of_a_rollback_journal_database_keeps_its_mode(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir()
    con = sqlite3.connect(settings.db_path)
    con.execute("create table notes (id integer primary key, text text)")
    con.executemany("insert into notes (text) values (?)", [("n" * 500,)] * 2000)  # several backup steps
    con.commit()
    con.close()
    made = backup.backup(settings, tmp_path / "backups")
    assert made.manifest["database"]["tables"] == {"notes": 2000}
    assert _journal_mode(settings.db_path) == "delete"


def test_restore_into_an_empty_data_dir_gives_the_same_rows_and_files(data, tmp_path):
    made = backup.backup(data, tmp_path / "backups")
    skipped = {entry["path"] for entry in made.manifest["skipped"]}
    assert skipped == set(SKIPPED_FILES.values())
    assert {e["path"] for e in made.manifest["files"]} == set(DATA_FILES)
    assert made.manifest["llmplay_version"] and made.manifest["created_at"]

    target = Settings(data_dir=tmp_path / "restored")
    found = backup.restore(target, tmp_path / "backups")  # the parent folder: its newest backup
    assert found.path == made.path
    assert _counts(target.db_path) == _counts(data.db_path)
    expected = {rel: hashlib.sha256(content).hexdigest() for rel, content in DATA_FILES.items()}
    assert _hashes(target.data_dir) == expected  # the same files, none of the skipped ones
    assert not list(tmp_path.glob(".restored.restore-*"))  # the staging folder was renamed into place
    with connect(target.db_path) as db:  # the app opens it as usual: WAL again, migrations up to date
        assert db.journal_mode == "wal"
        assert db["template_versions"].count == 20


@pytest.mark.parametrize("present", ["", "tmp/gradio/"])  # an empty volume; a fresh app's upload folder
def test_restore_into_an_existing_data_dir_without_a_database(data, tmp_path, present):
    made = backup.backup(data, tmp_path / "backups")
    target = Settings(data_dir=tmp_path / "restored")
    (target.data_dir / present).mkdir(parents=True)
    (target.data_dir / backup.RESTORE_STAGE / "x").mkdir(parents=True)  # left by a restore cut short
    backup.restore(target, made.path)
    assert _counts(target.db_path) == _counts(data.db_path)
    assert set(_hashes(target.data_dir)) == set(DATA_FILES)
    assert sorted(p.name for p in target.data_dir.iterdir() if p.name.startswith(".")) == []


def test_a_restore_staging_folder_is_left_out_of_a_backup(data, tmp_path):
    (data.data_dir / (backup.RESTORE_STAGE + "abc") / "datasets").mkdir(parents=True)
    (data.data_dir / (backup.RESTORE_STAGE + "abc") / "datasets" / "half.jsonl").write_text("{}")
    made = backup.backup(data, tmp_path / "backups")
    assert {e["path"] for e in made.manifest["files"]} == set(DATA_FILES)
    assert backup.RESTORE_STAGE + "abc/" in {e["path"] for e in made.manifest["skipped"]}


def test_a_backup_on_a_mount_that_cannot_rename_folders_is_copied_whole(data, tmp_path, monkeypatch):
    real_replace = os.replace

    def no_folder_rename(src, dst):
        if Path(src).is_dir():
            raise OSError(38, "Function not implemented")
        real_replace(src, dst)

    monkeypatch.setattr(backup.os, "replace", no_folder_rename)
    made = backup.backup(data, tmp_path / "bucket")
    assert [p.name for p in (tmp_path / "bucket").iterdir()] == [made.path.name]  # no .partial left
    backup.verify(made)
    monkeypatch.undo()
    backup.restore(Settings(data_dir=tmp_path / "restored"), tmp_path / "bucket")
    assert _counts(tmp_path / "restored" / "llmplay.db") == _counts(data.db_path)


def test_restore_refuses_a_data_dir_that_has_a_database(data, tmp_path):
    made = backup.backup(data, tmp_path / "backups")
    before = _hashes(data.data_dir) | {"db": hashlib.sha256(data.db_path.read_bytes()).hexdigest()}
    with pytest.raises(backup.BackupError, match="already has a database"):
        backup.restore(data, made.path)
    assert _hashes(data.data_dir) | {"db": hashlib.sha256(data.db_path.read_bytes()).hexdigest()} == before


@pytest.mark.parametrize(
    "damage, message",
    [
        ("files/datasets/fpb-1234abcd.jsonl", "does not match its sha256"),
        ("llmplay.db", "llmplay.db does not match its sha256"),
        ("delete:files/training/jobs/1/job.log", "training/jobs/1/job.log is missing"),
    ],
)
def test_restore_refuses_a_damaged_backup_and_restores_nothing(data, tmp_path, damage, message):
    made = backup.backup(data, tmp_path / "backups")
    if damage.startswith("delete:"):
        (made.path / damage.removeprefix("delete:")).unlink()
    else:
        path = made.path / damage
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2] ^= 0xFF  # one flipped byte, same size
        path.write_bytes(bytes(raw))
    target = Settings(data_dir=tmp_path / "restored")
    with pytest.raises(backup.BackupCorruptError, match=message) as error:
        backup.restore(target, made.path)
    assert "Nothing restored" in str(error.value)
    assert not target.data_dir.exists()
    assert not list(tmp_path.glob(".restored*"))


def test_a_manifest_cannot_restore_outside_the_data_dir(data, tmp_path):
    made = backup.backup(data, tmp_path / "backups")
    manifest = json.loads((made.path / backup.MANIFEST).read_text())
    manifest["files"][0]["path"] = "../escaped.txt"
    (made.path / backup.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(backup.BackupCorruptError, match="outside the data dir"):
        backup.restore(Settings(data_dir=tmp_path / "restored"), made.path)
    assert not (tmp_path / "escaped.txt").exists()


def test_backups_never_overwrite_and_keep_prunes_the_oldest(data, tmp_path):
    dest = tmp_path / "backups"
    made = []
    for n in range(3):
        with connect(data.db_path) as db:
            _add_version(db, 100 + n)
        made.append(backup.backup(data, dest, keep=2))
    (dest / ".llmplay-20200101T000000Z.partial").mkdir()  # a backup killed midway: never restored
    (dest / "llmplay-29990101T000000Z").mkdir()  # no manifest: not a backup
    assert len({b.path for b in made}) == 3
    assert [b.path for b in backup.list_backups(dest)] == [made[1].path, made[2].path]
    target = Settings(data_dir=tmp_path / "restored")
    assert backup.restore(target, dest).path == made[2].path
    with connect(target.db_path) as db:
        assert db["template_versions"].count == 23


def test_backup_refuses_bad_destinations_and_a_missing_database(data, tmp_path):
    with pytest.raises(backup.BackupError, match="No database"):
        backup.backup(Settings(data_dir=tmp_path / "empty"), tmp_path / "b")
    (tmp_path / "file").write_text("x")
    with pytest.raises(backup.BackupError, match="must be a folder"):
        backup.backup(data, tmp_path / "file")
    with pytest.raises(backup.BackupError, match="cannot be the data dir"):
        backup.backup(data, data.data_dir)
    with pytest.raises(backup.BackupError, match="--keep must be at least 1"):
        backup.backup(data, tmp_path / "b", keep=0)
    assert not (tmp_path / "b").exists()


def test_a_destination_inside_the_data_dir_is_left_out_of_the_next_backup(data):
    first = backup.backup(data, data.data_dir / "backups")
    second = backup.backup(data, data.data_dir / "backups")
    assert {"path": "backups/", "reason": "the backup destination itself"} in second.manifest["skipped"]
    assert len(second.manifest["files"]) == len(first.manifest["files"]) == len(DATA_FILES)


def test_restore_at_start_restores_only_when_the_database_is_missing(data, tmp_path):
    folder = tmp_path / "bucket"
    local = Settings(data_dir=tmp_path / "local")
    schedule = backup_schedule.BackupSchedule(folder=folder)
    assert backup_schedule.restore_at_start(local, backup_schedule.BackupSchedule()) is None  # no LLMPLAY_BACKUP_DIR
    assert backup_schedule.restore_at_start(local, schedule) is None  # nothing backed up yet
    assert not local.db_path.exists()
    made = backup.backup(data, folder)
    assert backup_schedule.restore_at_start(local, schedule) == str(made.path)
    assert _counts(local.db_path) == _counts(data.db_path)
    with connect(local.db_path) as db:  # the app writes on; a later start must keep that
        _add_version(db, 500)
    assert backup_schedule.restore_at_start(local, schedule) is None
    with connect(local.db_path) as db:
        assert db["template_versions"].count == 21


def test_restore_at_start_skips_a_damaged_newest_backup(data, tmp_path):
    folder = tmp_path / "bucket"
    older = backup.backup(data, folder)
    newer = backup.backup(data, folder)
    (newer.path / backup.DB_FILE).write_bytes(b"not a database")
    local = Settings(data_dir=tmp_path / "local")
    assert backup_schedule.restore_at_start(local, backup_schedule.BackupSchedule(folder=folder)) == str(older.path)


def test_schedule_from_env_reads_and_checks_its_variables(tmp_path):
    env = {"LLMPLAY_BACKUP_DIR": str(tmp_path), "LLMPLAY_BACKUP_INTERVAL_S": "60", "LLMPLAY_BACKUP_KEEP": "3"}
    expected = backup_schedule.BackupSchedule(folder=tmp_path, interval_s=60, keep=3)
    assert backup_schedule.BackupSchedule.from_env(env) == expected
    assert backup_schedule.BackupSchedule.from_env({}).folder is None
    with pytest.raises(backup.BackupError, match="LLMPLAY_BACKUP_INTERVAL_S='soon' must be a number"):
        backup_schedule.BackupSchedule.from_env(env | {"LLMPLAY_BACKUP_INTERVAL_S": "soon"})
    with pytest.raises(backup.BackupError, match="at least 10 seconds"):
        backup_schedule.BackupSchedule.from_env(env | {"LLMPLAY_BACKUP_INTERVAL_S": "1"})
    with pytest.raises(backup.BackupError, match="LLMPLAY_BACKUP_KEEP must be at least 1"):
        backup_schedule.BackupSchedule.from_env(env | {"LLMPLAY_BACKUP_KEEP": "0"})


def test_scheduled_backups_run_every_interval_keep_n_and_one_at_the_end(data, tmp_path):
    folder = tmp_path / "bucket"
    schedule = backup_schedule.BackupSchedule(folder=folder, interval_s=0.05, keep=2)
    assert backup_schedule.start_scheduled_backups(data, backup_schedule.BackupSchedule()) is None
    with backup_schedule.scheduled_backups(data, schedule) as thread:
        deadline = time.monotonic() + 10
        while len(thread.made) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(thread.made) >= 3
        with connect(data.db_path) as db:
            _add_version(db, 999)
    assert not thread.is_alive() and not thread.errors
    kept = backup.list_backups(folder)
    assert len(kept) == 2
    assert kept[-1].manifest["database"]["tables"]["template_versions"] == 21  # the final backup has the last row
    assert _journal_mode(data.db_path) == "wal"


def test_cli_backup_and_restore(data, tmp_path, capsys):
    dest = tmp_path / "backups"
    assert main(["--data-dir", str(data.data_dir), "backup", str(dest), "--keep", "3"]) == exitcodes.OK
    out = capsys.readouterr().out
    assert "Backed up the database" in out and "integrity ok" in out and "left out tmp/" in out
    made = backup.list_backups(dest)[-1]
    restored = tmp_path / "restored"
    assert main(["--data-dir", str(restored), "restore", str(dest), "--json"]) == exitcodes.OK
    assert json.loads(capsys.readouterr().out)["restored"] == str(made.path)
    assert _counts(restored / "llmplay.db") == _counts(data.db_path)

    assert main(["--data-dir", str(restored), "restore", str(dest)]) == exitcodes.BAD_INPUT
    assert "already has a database" in capsys.readouterr().err
    assert main(["--data-dir", str(tmp_path / "none"), "backup", str(dest)]) == exitcodes.BAD_INPUT
    assert "No database at" in capsys.readouterr().err
    assert main(["--data-dir", str(tmp_path / "x"), "restore", str(tmp_path / "nowhere")]) == exitcodes.BAD_INPUT
    assert "is not a folder" in capsys.readouterr().err

    (made.path / "files" / "models.yaml").write_bytes(b"- name: y\n")
    assert main(["--data-dir", str(tmp_path / "other"), "restore", str(made.path)]) == exitcodes.CHECK_FAILED
    assert "models.yaml does not match its sha256" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


# What `llmplay serve` does around its server (cli.cmd_serve, app.py), with a bare uvicorn server for speed.
SERVE = """
import sys, uvicorn
from fastapi import FastAPI
from llmplay import backup_schedule
from llmplay.settings import Settings
from llmplay.store import connect
settings = Settings.from_env()
print("restored", backup_schedule.restore_at_start(settings), flush=True)
with backup_schedule.scheduled_backups(settings):
    with connect(settings.db_path) as db:
        db["feedback_audit"].insert({"at": "now", "action": "after-restore", "entity": "test"})
    uvicorn.Server(uvicorn.Config(FastAPI(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")).run()
"""


def test_a_server_restores_at_start_and_backs_up_once_more_on_sigterm(data, tmp_path):
    bucket = tmp_path / "bucket"
    made = backup.backup(data, bucket)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = os.environ | {
        "LLMPLAY_DATA_DIR": str(tmp_path / "local"),
        "LLMPLAY_BACKUP_DIR": str(bucket),
        "LLMPLAY_BACKUP_INTERVAL_S": "3600",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGTERM)  # what `docker stop` and a Space restart send
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert f"restored {made.path}" in out, err
    assert proc.returncode == 128 + signal.SIGTERM, err
    newest = backup.list_backups(bucket)[-1]
    assert newest.path != made.path  # the last backup at shutdown has the row written after the restore
    assert (
        newest.manifest["database"]["tables"]["feedback_audit"]
        == made.manifest["database"]["tables"]["feedback_audit"] + 1
    )


def _edit_manifest(made, edit) -> None:
    manifest = json.loads((made.path / backup.MANIFEST).read_text())
    edit(manifest)
    (made.path / backup.MANIFEST).write_text(json.dumps(manifest))


def _set(path: str, value):
    """An edit that puts ``value`` at ``path`` ("files.0.size") in a manifest."""

    def edit(manifest):
        *parents, last = path.split(".")
        node = manifest
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = value

    return edit


WRONG_TYPES = {
    "files not a list": ("files", {"a": 1}),
    "entry not an object": ("files.0", "models.yaml"),
    "path not text": ("files.0.path", 7),
    "path empty": ("files.0.path", ""),
    "path with a NUL": ("files.0.path", "a\x00b"),
    "size as text": ("files.0.size", "10"),
    "sha256 missing": ("files.0.sha256", None),
    "database not an object": ("database", ["llmplay.db"]),
    "tables not counts": ("database.tables", {"t": "many"}),
    "created_at not text": ("created_at", 5),
    "version not text": ("llmplay_version", {"v": 1}),
}


@pytest.mark.parametrize("field, value", WRONG_TYPES.values(), ids=WRONG_TYPES.keys())
def test_a_manifest_with_wrong_types_is_damaged_and_restores_nothing(data, tmp_path, capsys, field, value):
    made = backup.backup(data, tmp_path / "backups")
    _edit_manifest(made, _set(field, value))
    target = tmp_path / "restored"
    code = main(["--data-dir", str(target), "restore", str(made.path)])
    err = capsys.readouterr().err
    assert code == exitcodes.CHECK_FAILED, err
    assert "Traceback" not in err and "manifest" in err and "Nothing restored" in err, err
    assert not target.exists()
    # Among other backups a damaged one is passed over, as one with a bad sha256 is.
    assert backup.list_backups(tmp_path / "backups") == []


@pytest.mark.parametrize("sidecar", ["llmplay.db-wal", "llmplay.db-shm", "llmplay.db-journal", "llmplay.db"])
def test_a_manifest_naming_the_databases_sidecar_files_is_refused(data, tmp_path, sidecar):
    """A -wal file next to the restored database would be replayed into it by SQLite, past integrity_check."""
    made = backup.backup(data, tmp_path / "backups")
    content = b"not what the verified database holds"
    (made.path / "files" / sidecar).write_bytes(content)
    entry = {"path": sidecar, "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    _edit_manifest(made, lambda m: m["files"].append(entry))
    target = Settings(data_dir=tmp_path / "restored")
    with pytest.raises(backup.BackupCorruptError, match=f"{sidecar}.*database"):
        backup.restore(target, made.path)
    assert not target.data_dir.exists()


def test_a_backup_inside_the_data_dir_is_not_copied_into_later_backups(data, tmp_path):
    inner = backup.backup(data, data.data_dir / "backups")
    later = backup.backup(data, tmp_path / "elsewhere")
    paths = [e["path"] for e in later.manifest["files"]]
    assert not [p for p in paths if p.startswith("backups/")], paths
    assert len(paths) == len(DATA_FILES)
    assert {"path": f"backups/{inner.path.name}/", "reason": backup_files.BACKUP_REASON} in later.manifest["skipped"]
